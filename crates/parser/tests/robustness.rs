//! `parse` never panics: on arbitrary strings, and on corpus lines cut, spliced and sprinkled with the
//! characters the tokenizer treats specially.

use proptest::prelude::*;

fn corpus_texts() -> Vec<String> {
    let mut texts = Vec::new();
    for file in ["signals_dev.jsonl", "heldout.jsonl", "heldout2.jsonl", "heldout3.jsonl", "heldout4.jsonl"] {
        let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
        let data = std::fs::read_to_string(&path).expect("test data");
        for line in data.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            texts.push(v["text"].as_str().expect("text").to_string());
        }
    }
    texts
}

/// Characters with meaning to the tokenizer: separators, suffixes, marks, multi-byte letters.
const SPECIAL: &[&str] = &[
    ",",
    ".",
    "k",
    "x",
    "х",
    "×",
    "%",
    "@",
    "#",
    "$",
    "/",
    "-",
    "_",
    ":",
    ")",
    "\n",
    "🎯",
    "🛑",
    "💰",
    "📈",
    "✅",
    "é",
    "Ё",
    "İ",
    "\u{FE0F}",
    "0",
    "9",
    "99999999999999999999999999999999",
    ",,",
    "..",
    "<@&",
    "http://",
];

fn char_boundary_floor(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        let parsed = parser::parse(&text);
        // Serialising must not fail either (the CLI prints every result).
        prop_assert!(serde_json::to_string(&parsed).is_ok());
    }

    #[test]
    fn mutated_corpus_lines_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0u8..3), 1..8),
    ) {
        let texts = corpus_texts();
        let mut text = pick.get(&texts).clone();
        for (at, what, op) in edits {
            let i = char_boundary_floor(&text, at.index(text.len() + 1));
            match op {
                0 => {
                    let special: &&str = what.get(SPECIAL);
                    text.insert_str(i, special);
                }
                1 => text.truncate(i),
                _ => {
                    let other = what.get(&texts);
                    let j = char_boundary_floor(other, what.index(other.len() + 1));
                    text.insert_str(i, &other[j..]);
                }
            }
        }
        let parsed = parser::parse(&text);
        prop_assert!(serde_json::to_string(&parsed).is_ok());
    }
}
