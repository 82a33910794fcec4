//! Rules Discord enforces on message and modal bodies that its OpenAPI schemas cannot express, so a body
//! that passes the schema but that Discord would still answer with 50035 (or 50006) fails here too.
//!
//! Each rule is one Discord documents for components, embeds or messages; none is a guess about style.

use super::Violation;
use serde_json::Value;
use std::collections::HashSet;

/// `IS_COMPONENTS_V2`: top-level components may then be layout components instead of action rows.
const FLAG_COMPONENTS_V2: u64 = 1 << 15;
/// Sum of all title, description, field, footer and author texts over a message's embeds.
const EMBED_TOTAL_CHARS: usize = 6000;
const MAX_ACTION_ROWS: usize = 5;
const MAX_MODAL_COMPONENTS: usize = 5;

const BUTTON: u64 = 2;
const ACTION_ROW: u64 = 1;
const TEXT_INPUT: u64 = 4;
const SELECTS: [u64; 5] = [3, 5, 6, 7, 8];

/// The rules for the body of one operation (by the spec's `operationId`).
pub fn check_operation(operation_id: &str, body: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    match operation_id {
        "create_message" | "execute_webhook" => {
            check_not_empty(body, "", &mut out);
            check_message(body, "", &mut out);
        }
        "update_message" | "update_original_webhook_message" | "update_webhook_message" => {
            check_message(body, "", &mut out);
        }
        "create_interaction_response" => check_interaction_response(body, &mut out),
        _ => {}
    }
    out
}

fn check_interaction_response(body: &Value, out: &mut Vec<Violation>) {
    let data = body.get("data").filter(|d| !d.is_null());
    match body.get("type").and_then(Value::as_u64) {
        Some(4) => match data {
            Some(data) => {
                check_not_empty(data, "/data", out);
                check_message(data, "/data", out);
            }
            None => out.push(Violation::new("/data", "A message response needs data", "BASE_TYPE_REQUIRED")),
        },
        Some(7) => {
            if let Some(data) = data {
                check_message(data, "/data", out);
            }
        }
        Some(9) => {
            if let Some(data) = data {
                check_modal(data, "/data", out);
            }
        }
        _ => {}
    }
}

/// Discord answers 50006 "Cannot send an empty message" to these.
fn check_not_empty(body: &Value, path: &str, out: &mut Vec<Violation>) {
    let present = |key: &str| match body.get(key) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    };
    if !["content", "embeds", "components", "sticker_ids", "attachments", "poll"].iter().any(|key| present(key)) {
        out.push(Violation::new(path, "Cannot send an empty message", "EMPTY_MESSAGE"));
    }
}

fn check_message(body: &Value, path: &str, out: &mut Vec<Violation>) {
    if let Some(embeds) = body.get("embeds").and_then(Value::as_array) {
        check_embeds(embeds, &format!("{path}/embeds"), out);
    }
    let Some(components) = body.get("components").and_then(Value::as_array) else {
        return;
    };
    let v2 = body.get("flags").and_then(Value::as_u64).is_some_and(|flags| flags & FLAG_COMPONENTS_V2 != 0);
    let mut custom_ids = HashSet::new();
    if !v2 {
        if components.len() > MAX_ACTION_ROWS {
            out.push(Violation::new(
                format!("{path}/components"),
                format!("Must be {MAX_ACTION_ROWS} or fewer in length."),
                "BASE_TYPE_MAX_LENGTH",
            ));
        }
        for (i, component) in components.iter().enumerate() {
            if kind(component) != Some(ACTION_ROW) {
                out.push(Violation::new(
                    format!("{path}/components/{i}/type"),
                    "Top-level components must be action rows unless the message has the IS_COMPONENTS_V2 flag",
                    "COMPONENT_TYPE_INVALID",
                ));
            }
        }
    }
    for (i, component) in components.iter().enumerate() {
        check_component(component, &format!("{path}/components/{i}"), &mut custom_ids, out);
    }
}

fn check_embeds(embeds: &[Value], path: &str, out: &mut Vec<Violation>) {
    let mut total = 0;
    for (i, embed) in embeds.iter().enumerate() {
        let text = |pointer: &str| embed.pointer(pointer).and_then(Value::as_str).map_or(0, |s| s.chars().count());
        total += text("/title") + text("/description") + text("/footer/text") + text("/author/name");
        for (j, field) in embed.get("fields").and_then(Value::as_array).into_iter().flatten().enumerate() {
            for key in ["name", "value"] {
                if let Some(s) = field.get(key).and_then(Value::as_str) {
                    total += s.chars().count();
                    if s.trim().is_empty() {
                        out.push(Violation::new(
                            format!("{path}/{i}/fields/{j}/{key}"),
                            "This field is required",
                            "BASE_TYPE_REQUIRED",
                        ));
                    }
                }
            }
        }
    }
    if total > EMBED_TOTAL_CHARS {
        out.push(Violation::new(
            path,
            format!("Embed size exceeds maximum size of {EMBED_TOTAL_CHARS}"),
            "MAX_EMBED_SIZE_EXCEEDED",
        ));
    }
}

fn kind(component: &Value) -> Option<u64> {
    component.get("type").and_then(Value::as_u64)
}

fn non_empty(component: &Value, key: &str) -> bool {
    match component.get(key) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// Walks any component tree (rows, sections, containers, labels) checking buttons, selects and custom ids.
fn check_component(component: &Value, path: &str, custom_ids: &mut HashSet<String>, out: &mut Vec<Violation>) {
    if let Some(id) = component.get("custom_id").and_then(Value::as_str)
        && !custom_ids.insert(id.to_string())
    {
        out.push(Violation::new(
            format!("{path}/custom_id"),
            format!("Component custom id cannot be duplicated: {id}"),
            "COMPONENT_CUSTOM_ID_DUPLICATED",
        ));
    }
    match kind(component) {
        Some(BUTTON) => check_button(component, path, out),
        Some(ACTION_ROW) => {
            let children = component.get("components").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            let selects = children.iter().filter(|c| kind(c).is_some_and(|k| SELECTS.contains(&k))).count();
            if selects > 0 && children.len() > 1 {
                out.push(Violation::new(
                    format!("{path}/components"),
                    "An action row holds either up to 5 buttons or a single select menu",
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                ));
            }
        }
        _ => {}
    }
    for key in ["components", "accessory", "component"] {
        match component.get(key) {
            Some(Value::Array(children)) => {
                for (i, child) in children.iter().enumerate() {
                    check_component(child, &format!("{path}/{key}/{i}"), custom_ids, out);
                }
            }
            Some(child @ Value::Object(_)) => check_component(child, &format!("{path}/{key}"), custom_ids, out),
            _ => {}
        }
    }
}

fn check_button(button: &Value, path: &str, out: &mut Vec<Violation>) {
    let style = button.get("style").and_then(Value::as_u64);
    let mut require = |key: &str, why: &str| {
        if !non_empty(button, key) {
            out.push(Violation::new(format!("{path}/{key}"), why.to_string(), "BASE_TYPE_REQUIRED"));
        }
    };
    match style {
        Some(1..=4) => require("custom_id", "A non-link button needs a custom_id"),
        Some(5) => require("url", "A link button needs a url"),
        Some(6) => require("sku_id", "A premium button needs a sku_id"),
        _ => {}
    }
    let forbidden: &[&str] = match style {
        Some(1..=4) => &["url", "sku_id"],
        Some(5) => &["custom_id", "sku_id"],
        Some(6) => &["custom_id", "url", "label", "emoji"],
        _ => &[],
    };
    for key in forbidden {
        if non_empty(button, key) {
            out.push(Violation::new(
                format!("{path}/{key}"),
                format!("A button of style {} cannot have {key}", style.unwrap_or_default()),
                "BUTTON_COMPONENT_INVALID",
            ));
        }
    }
}

fn check_modal(data: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(components) = data.get("components").and_then(Value::as_array) else {
        return;
    };
    if components.len() > MAX_MODAL_COMPONENTS {
        out.push(Violation::new(
            format!("{path}/components"),
            format!("Must be {MAX_MODAL_COMPONENTS} or fewer in length."),
            "BASE_TYPE_MAX_LENGTH",
        ));
    }
    let mut custom_ids = HashSet::new();
    for (i, component) in components.iter().enumerate() {
        let here = format!("{path}/components/{i}");
        check_component(component, &here, &mut custom_ids, out);
        if kind(component) == Some(ACTION_ROW) {
            let children = component.get("components").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            if children.len() != 1 {
                out.push(Violation::new(
                    format!("{here}/components"),
                    "A modal action row holds exactly one text input",
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                ));
            }
            for (j, input) in children.iter().enumerate() {
                if kind(input) == Some(TEXT_INPUT) && !non_empty(input, "label") {
                    out.push(Violation::new(
                        format!("{here}/components/{j}/label"),
                        "A text input in an action row needs a label",
                        "BASE_TYPE_REQUIRED",
                    ));
                }
            }
        }
        check_text_input_lengths(component, &here, out);
    }
}

fn check_text_input_lengths(component: &Value, path: &str, out: &mut Vec<Violation>) {
    let inputs: Vec<(String, &Value)> = match kind(component) {
        Some(TEXT_INPUT) => vec![(path.to_string(), component)],
        _ => component
            .get("components")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(j, c)| (format!("{path}/components/{j}"), c))
            .chain(component.get("component").map(|c| (format!("{path}/component"), c)))
            .filter(|(_, c)| kind(c) == Some(TEXT_INPUT))
            .collect(),
    };
    for (here, input) in inputs {
        let min = input.get("min_length").and_then(Value::as_u64);
        let max = input.get("max_length").and_then(Value::as_u64);
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            out.push(Violation::new(
                format!("{here}/min_length"),
                format!("min_length {min} is greater than max_length {max}"),
                "NUMBER_TYPE_MAX",
            ));
        }
        if let (Some(max), Some(value)) = (max, input.get("value").and_then(Value::as_str))
            && value.chars().count() as u64 > max
        {
            out.push(Violation::new(
                format!("{here}/value"),
                format!("Must be {max} or fewer in length."),
                "BASE_TYPE_MAX_LENGTH",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn link_button_with_custom_id_is_refused() {
        let body = json!({"components": [{"type": 1, "components": [
            {"type": 2, "style": 5, "url": "https://example.com", "custom_id": "x", "label": "x"}
        ]}]});
        let violations = check_operation("create_message", &body);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].path, "/components/0/components/0/custom_id");
    }

    #[test]
    fn duplicate_custom_ids_are_refused() {
        let body = json!({"components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "custom_id": "a", "label": "x"},
            {"type": 2, "style": 2, "custom_id": "a", "label": "y"}
        ]}]});
        let violations = check_operation("create_message", &body);
        assert_eq!(violations[0].code, "COMPONENT_CUSTOM_ID_DUPLICATED");
    }

    #[test]
    fn empty_message_is_refused() {
        assert_eq!(check_operation("create_message", &json!({"content": ""}))[0].code, "EMPTY_MESSAGE");
        assert!(check_operation("update_message", &json!({"content": ""})).is_empty());
    }
}
