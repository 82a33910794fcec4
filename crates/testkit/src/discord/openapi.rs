//! Discord's official OpenAPI 3.1 description (`specs/discord/openapi.json`, MIT, see `SOURCE.md` beside it)
//! as a validator of JSON bodies.
//!
//! The spec is embedded at compile time so a fresh clone validates without `../shared`. It is parsed and
//! registered once per process ([`Spec::global`], about 50 ms in a debug build); each schema is compiled the
//! first time it is used (about 10 ms for a message body) and the validator is cached, so a test process pays
//! only for the few operations it exercises out of the hundreds the document describes.
//!
//! OpenAPI 3.1 schemas are JSON Schema 2020-12, so the whole document is registered as one resource and a
//! schema is validated through a root `{"$ref": "<spec-uri>#<pointer>"}`: `#/components/schemas/...`
//! references inside it then resolve against the document itself.
//!
//! Two layers sit on top of the raw schema check, both because a test should fail when the bot sends what
//! Discord would reject:
//! - [`QUIRKS`]: places where the published spec is narrower than what Discord accepts and clients send;
//!   the spec file stays untouched, the fix is applied in memory.
//! - [`rules`](self::rules): Discord rules the schema cannot express (a non-link button needs a
//!   `custom_id`, custom ids are unique within a message, a message may not be empty, ...).

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

pub mod rules;

/// The spec as shipped in the repository (`specs/discord/openapi.json`).
pub const SPEC_JSON: &str = include_str!("../../../../specs/discord/openapi.json");

/// The URI the document is registered under; only used to resolve references, never fetched.
pub const SPEC_URI: &str = "https://discord.com/api/v10/openapi.json";

/// Pointer of the request body schema of `POST /interactions/{interaction_id}/{interaction_token}/callback`:
/// the union of every interaction response type (PONG, message, deferred, update, modal, autocomplete, ...).
/// The body `/discord/interactions` answers with is exactly this object.
pub const INTERACTION_RESPONSE_SCHEMA: &str = "#/paths/~1interactions~1{interaction_id}~1{interaction_token}~1callback/post/requestBody/content/application~1json/schema";

/// Corrections applied in memory to the published spec, each with the reason. `(schema name, property,
/// what changes)`.
pub const QUIRKS: &[(&str, &str, &str)] = &[
    (
        "InnerErrors",
        "_errors[].code",
        "also a string: the field errors of a 50035 answer carry codes like \"BASE_TYPE_REQUIRED\", the spec \
         reuses the top-level Error whose code is an integer",
    ),
    (
        "*",
        "default_member_permissions",
        "also a decimal string: Discord documents and returns the permission bit set as a string, twilight-model \
         serialises it as one, the spec only allows an integer",
    ),
];

/// One reason a body does not validate: where (a JSON pointer into the body, `""` for the body itself), what,
/// and a Discord-style error code for the `errors` object of a 50035 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
    pub code: &'static str,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() { "/" } else { &self.path };
        write!(f, "{path}: {} ({})", self.message, self.code)
    }
}

impl Violation {
    pub fn new(path: impl Into<String>, message: impl Into<String>, code: &'static str) -> Self {
        Self { path: path.into(), message: message.into(), code }
    }
}

/// Discord's `errors` object of an "Invalid Form Body" (50035) answer: the body's shape, with
/// `{"_errors": [{"code", "message"}]}` at each failing place.
pub fn discord_errors_object(violations: &[Violation]) -> Value {
    let mut root = Map::new();
    for violation in violations {
        let mut node = &mut root;
        for segment in violation.path.split('/').skip(1) {
            let segment = segment.replace("~1", "/").replace("~0", "~");
            let entry = node.entry(segment).or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            node = entry.as_object_mut().expect("made an object above");
        }
        let errors = node.entry("_errors").or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = errors {
            list.push(json!({"code": violation.code, "message": violation.message}));
        }
    }
    Value::Object(root)
}

/// Discord's OpenAPI description with lazily compiled, cached validators.
pub struct Spec {
    document: Arc<Value>,
    registry: jsonschema::Registry<'static>,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.validators.lock().map(|v| v.len()).unwrap_or(0);
        f.debug_struct("Spec").field("uri", &SPEC_URI).field("compiled_validators", &cached).finish()
    }
}

impl Spec {
    /// The embedded spec, parsed and registered once per process.
    pub fn global() -> &'static Spec {
        static SPEC: OnceLock<Spec> = OnceLock::new();
        SPEC.get_or_init(|| Spec::parse(SPEC_JSON).expect("the embedded Discord OpenAPI spec loads"))
    }

    /// A spec from its JSON text, with [`QUIRKS`] applied.
    pub fn parse(text: &str) -> Result<Spec, String> {
        let mut document: Value = serde_json::from_str(text).map_err(|e| format!("spec is not JSON: {e}"))?;
        apply_quirks(&mut document);
        let document = Arc::new(document);
        let registry = jsonschema::Registry::new()
            .draft(Draft::Draft202012)
            .add(SPEC_URI, Arc::clone(&document))
            .and_then(|builder| builder.prepare())
            .map_err(|e| format!("cannot register the spec: {e}"))?;
        Ok(Spec { document, registry, validators: Mutex::new(HashMap::new()) })
    }

    /// The whole document (after [`QUIRKS`]).
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// The spec's path template for a method and a concrete or templated path. Accepts `/api/v10/...`, a
    /// query string, and concrete ids: `POST /api/v10/channels/123/messages?x=1` gives
    /// `/channels/{channel_id}/messages`. Literal segments win over parameters (`/users/@me/channels`).
    pub fn path_template(&self, method: &str, path: &str) -> Option<&str> {
        let path = normalise_path(path);
        let paths = self.document.get("paths")?.as_object()?;
        let method = method.to_ascii_lowercase();
        if let Some((template, item)) = paths.get_key_value(path)
            && item.get(&method).is_some()
        {
            return Some(template);
        }
        let wanted: Vec<&str> = path.split('/').collect();
        paths
            .iter()
            .filter(|(_, item)| item.get(&method).is_some())
            .filter_map(|(template, _)| {
                let segments: Vec<&str> = template.split('/').collect();
                if segments.len() != wanted.len() {
                    return None;
                }
                let mut literals = 0;
                for (t, w) in segments.iter().zip(&wanted) {
                    if t.starts_with('{') && t.ends_with('}') {
                        if w.is_empty() {
                            return None;
                        }
                    } else if t == w {
                        literals += 1;
                    } else {
                        return None;
                    }
                }
                Some((literals, template.as_str()))
            })
            .max_by_key(|(literals, _)| *literals)
            .map(|(_, template)| template)
    }

    /// The `operationId` of an operation (`create_message`, `create_interaction_response`, ...).
    pub fn operation_id(&self, method: &str, path: &str) -> Option<&str> {
        let template = self.path_template(method, path)?;
        self.document["paths"][template][method.to_ascii_lowercase()]["operationId"].as_str()
    }

    /// Pointer (`#/paths/...`) of the JSON request body schema of an operation.
    pub fn request_schema_pointer(&self, method: &str, path: &str) -> Option<String> {
        let template = self.path_template(method, path)?;
        let method = method.to_ascii_lowercase();
        self.document["paths"][template][&method]["requestBody"]["content"]["application/json"].get("schema")?;
        Some(format!(
            "#/paths/{}/{method}/requestBody/content/application~1json/schema",
            escape_pointer_segment(template)
        ))
    }

    /// Pointer of the JSON response schema of an operation for a status, following `4XX`/`5XX`/`default`
    /// and `#/components/responses/...` references. `None` when that response has no JSON body (a 204).
    pub fn response_schema_pointer(&self, method: &str, path: &str, status: u16) -> Option<String> {
        let template = self.path_template(method, path)?;
        let method = method.to_ascii_lowercase();
        let responses = self.document["paths"][template][&method].get("responses")?.as_object()?;
        let family = format!("{}XX", status / 100);
        let key =
            [status.to_string(), family, "default".to_string()].into_iter().find(|key| responses.contains_key(key))?;
        let mut pointer = format!("/paths/{}/{method}/responses/{}", escape_pointer_segment(template), key);
        let mut response = self.document.pointer(&pointer)?;
        if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
            pointer = reference.trim_start_matches('#').to_string();
            response = self.document.pointer(&pointer)?;
        }
        response.get("content")?.get("application/json")?.get("schema")?;
        Some(format!("#{pointer}/content/application~1json/schema"))
    }

    /// Validates a request body against the operation's JSON request schema, then against [`rules`].
    /// `path` is a spec template or a concrete path (see [`Spec::path_template`]).
    pub fn validate_request(&self, method: &str, path: &str, body: &Value) -> Result<(), Vec<String>> {
        self.check_request(method, path, body).map_err(to_strings)
    }

    /// [`Spec::validate_request`] with structured violations.
    pub fn check_request(&self, method: &str, path: &str, body: &Value) -> Result<(), Vec<Violation>> {
        let Some(template) = self.path_template(method, path) else {
            return Err(vec![Violation::new("", format!("{method} {path} is not in Discord's API"), "UNKNOWN_ROUTE")]);
        };
        let Some(pointer) = self.request_schema_pointer(method, template) else {
            return Err(vec![Violation::new("", format!("{method} {template} takes no JSON body"), "UNKNOWN_BODY")]);
        };
        let mut violations = self.check_pointer(&pointer, body)?;
        let operation = self.operation_id(method, template).unwrap_or_default();
        violations.extend(rules::check_operation(operation, body));
        if violations.is_empty() { Ok(()) } else { Err(violations) }
    }

    /// Validates a response body against what the operation documents for that status. A status whose
    /// response has no JSON body (a 204) accepts only `null`.
    pub fn validate_response(&self, method: &str, path: &str, status: u16, body: &Value) -> Result<(), Vec<String>> {
        self.check_response(method, path, status, body).map_err(to_strings)
    }

    /// [`Spec::validate_response`] with structured violations.
    pub fn check_response(&self, method: &str, path: &str, status: u16, body: &Value) -> Result<(), Vec<Violation>> {
        let Some(template) = self.path_template(method, path) else {
            return Err(vec![Violation::new("", format!("{method} {path} is not in Discord's API"), "UNKNOWN_ROUTE")]);
        };
        match self.response_schema_pointer(method, template, status) {
            Some(pointer) => match self.check_pointer(&pointer, body)? {
                violations if violations.is_empty() => Ok(()),
                violations => Err(violations),
            },
            None if body.is_null() => Ok(()),
            None => Err(vec![Violation::new(
                "",
                format!("{method} {template} documents no JSON body for status {status}"),
                "UNEXPECTED_BODY",
            )]),
        }
    }

    /// Validates a value against a schema given by component name (`MessageCreateRequest`) or pointer
    /// (`#/components/schemas/RichEmbed`, [`INTERACTION_RESPONSE_SCHEMA`]). Schema checks only: the
    /// [`rules`] are applied by the operation-aware methods.
    pub fn validate_schema(&self, name_or_pointer: &str, value: &Value) -> Result<(), Vec<String>> {
        self.check_schema(name_or_pointer, value).map_err(to_strings)
    }

    /// [`Spec::validate_schema`] with structured violations.
    pub fn check_schema(&self, name_or_pointer: &str, value: &Value) -> Result<(), Vec<Violation>> {
        let pointer = if name_or_pointer.starts_with('#') {
            name_or_pointer.to_string()
        } else if name_or_pointer.starts_with('/') {
            format!("#{name_or_pointer}")
        } else {
            format!("#/components/schemas/{name_or_pointer}")
        };
        match self.check_pointer(&pointer, value)? {
            violations if violations.is_empty() => Ok(()),
            violations => Err(violations),
        }
    }

    /// Validates an answer of the bot's own Interactions Endpoint (`POST /discord/interactions`): the
    /// schema, plus the rules Discord applies to the same body sent as an interaction callback.
    pub fn validate_interaction_response(&self, body: &Value) -> Result<(), Vec<String>> {
        self.validate_request("POST", "/interactions/{interaction_id}/{interaction_token}/callback", body)
    }

    /// Compiles (once) the validator of a pointer into the document. The inner `Vec` holds the violations;
    /// the outer `Err` means the pointer is not a schema of this document.
    fn check_pointer(&self, pointer: &str, value: &Value) -> Result<Vec<Violation>, Vec<Violation>> {
        let validator = self.validator(pointer).map_err(|e| vec![Violation::new("", e, "UNKNOWN_SCHEMA")])?;
        let mut violations = Vec::new();
        for error in validator.iter_errors(value) {
            flatten(&error, &mut violations);
        }
        violations.dedup();
        Ok(violations)
    }

    fn validator(&self, pointer: &str) -> Result<Arc<Validator>, String> {
        let mut cache = self.validators.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(validator) = cache.get(pointer) {
            return Ok(Arc::clone(validator));
        }
        if self.document.pointer(pointer.trim_start_matches('#')).is_none_or(|s| !s.is_object() && !s.is_boolean()) {
            return Err(format!("{pointer} is not a schema in Discord's OpenAPI spec"));
        }
        let root = json!({ "$ref": format!("{SPEC_URI}{}", percent_encode_fragment(pointer)) });
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .should_ignore_unknown_formats(true)
            .build(&root)
            .map_err(|e| format!("cannot compile {pointer}: {e}"))?;
        let validator = Arc::new(validator);
        cache.insert(pointer.to_string(), Arc::clone(&validator));
        Ok(validator)
    }
}

fn to_strings(violations: Vec<Violation>) -> Vec<String> {
    violations.iter().map(ToString::to_string).collect()
}

/// `/api/v10/channels/1/messages?wait=true` → `/channels/1/messages`.
fn normalise_path(path: &str) -> &str {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let path = path.strip_prefix("/api").unwrap_or(path);
    match path.strip_prefix("/v") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
            rest.find('/').map_or("/", |slash| &rest[slash..])
        }
        _ => path,
    }
}

fn escape_pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Braces of path templates are not allowed in a URI fragment; the resolver percent-decodes them back.
fn percent_encode_fragment(pointer: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + 8);
    for c in pointer.chars() {
        match c {
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            ' ' => out.push_str("%20"),
            '"' => out.push_str("%22"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '\\' => out.push_str("%5C"),
            '^' => out.push_str("%5E"),
            '`' => out.push_str("%60"),
            '|' => out.push_str("%7C"),
            c => out.push(c),
        }
    }
    out
}

fn apply_quirks(document: &mut Value) {
    let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(items) = schemas.get_mut("InnerErrors").and_then(|s| s.pointer_mut("/properties/_errors/items")) {
        *items = json!({
            "type": "object",
            "properties": {"code": {"type": ["integer", "string"]}, "message": {"type": "string"}},
            "required": ["code", "message"]
        });
    }
    for schema in schemas.values_mut() {
        let Some(property) = schema.pointer_mut("/properties/default_member_permissions") else {
            continue;
        };
        if let Some(Value::Array(types)) = property.get_mut("type")
            && types.iter().any(|t| t == "integer")
            && !types.iter().any(|t| t == "string")
        {
            types.push(json!("string"));
            property["pattern"] = json!("^(0|[1-9][0-9]*)$");
        }
    }
}

fn code_for(keyword: &str) -> &'static str {
    match keyword {
        "required" => "BASE_TYPE_REQUIRED",
        "maxLength" | "maxItems" | "maxProperties" => "BASE_TYPE_MAX_LENGTH",
        "minLength" | "minItems" | "minProperties" => "BASE_TYPE_MIN_LENGTH",
        "enum" | "const" | "oneOf" | "anyOf" => "BASE_TYPE_CHOICES",
        "maximum" | "exclusiveMaximum" => "NUMBER_TYPE_MAX",
        "minimum" | "exclusiveMinimum" => "NUMBER_TYPE_MIN",
        "format" => "BASE_TYPE_BAD_FORMAT",
        "type" => "BASE_TYPE_BAD_TYPE",
        _ => "BASE_TYPE_INVALID",
    }
}

/// Turns one jsonschema error into readable violations. A failed `oneOf`/`anyOf` over Discord's tagged
/// unions (components by `type`, nullable wrappers) would otherwise only say "not valid under any of the
/// schemas"; here the branches whose discriminator did not match are dropped and the errors of the
/// closest remaining branch are reported at their own paths.
fn flatten(error: &ValidationError<'_>, out: &mut Vec<Violation>) {
    let path = error.instance_path().as_str().to_string();
    match error.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            let branches: Vec<Vec<Violation>> = context
                .iter()
                .map(|branch| {
                    let mut violations = Vec::new();
                    for error in branch {
                        flatten(error, &mut violations);
                    }
                    violations
                })
                .collect();
            let enumeration = !branches.is_empty()
                && branches.iter().all(|b| b.len() == 1 && b[0].path == path && b[0].code == "BASE_TYPE_CHOICES");
            if enumeration {
                let message = format!("{} is not one of the allowed values", error.instance());
                out.push(Violation::new(path, message, "BASE_TYPE_CHOICES"));
                return;
            }
            let plausible = branches
                .iter()
                .filter(|branch| !branch.iter().any(|v| is_discriminator_miss(v, &path)))
                .min_by_key(|branch| {
                    // Among equally broken variants, the one whose first error lies deepest matched the most.
                    let depth = branch.iter().map(|v| v.path.matches('/').count()).min().unwrap_or(0);
                    (branch.len(), std::cmp::Reverse(depth))
                });
            if let Some(branch) = plausible {
                out.extend(branch.iter().cloned());
                return;
            }
            let common: Vec<&Violation> = branches
                .first()
                .map(|first| first.iter().filter(|v| branches.iter().all(|b| b.contains(v))).collect())
                .unwrap_or_default();
            if common.is_empty() {
                let kind = error.instance().get("type").map(|t| format!(" (type {t})")).unwrap_or_default();
                out.push(Violation::new(
                    path,
                    format!("matches none of the allowed variants{kind}"),
                    "BASE_TYPE_CHOICES",
                ));
            } else {
                out.extend(common.into_iter().cloned());
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().map_or_else(|| property.to_string(), str::to_string);
            out.push(Violation::new(
                format!("{path}/{}", escape_pointer_segment(&name)),
                "This field is required",
                "BASE_TYPE_REQUIRED",
            ));
        }
        _ => out.push(Violation::new(path, shortened_message(error), code_for(error.kind().keyword()))),
    }
}

/// jsonschema's message quoting a 4,000-character string in full helps nobody; keep its start.
fn shortened_message(error: &ValidationError<'_>) -> String {
    const KEEP: usize = 60;
    let message = error.to_string();
    let instance = error.instance().to_string();
    if instance.chars().count() <= KEEP {
        return message;
    }
    let short: String = instance.chars().take(KEEP).collect();
    message.replacen(&instance, &format!("{short}…"), 1)
}

/// A branch that failed because it is the wrong variant, not because the value is a broken instance of it:
/// a JSON type mismatch of the value itself, or a wrong or missing `type` tag.
fn is_discriminator_miss(violation: &Violation, base: &str) -> bool {
    (violation.path == base && violation.code == "BASE_TYPE_BAD_TYPE")
        || (violation.path == format!("{base}/type")
            && matches!(violation.code, "BASE_TYPE_CHOICES" | "BASE_TYPE_REQUIRED" | "BASE_TYPE_BAD_TYPE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_paths() {
        assert_eq!(normalise_path("/api/v10/channels/1/messages?wait=true"), "/channels/1/messages");
        assert_eq!(normalise_path("/channels/{channel_id}/messages"), "/channels/{channel_id}/messages");
        assert_eq!(normalise_path("/api/v10"), "/");
    }

    #[test]
    fn errors_object_has_discord_shape() {
        let errors =
            discord_errors_object(&[Violation::new("/embeds/0/fields/1/name", "required", "BASE_TYPE_REQUIRED")]);
        assert_eq!(errors["embeds"]["0"]["fields"]["1"]["name"]["_errors"][0]["code"], "BASE_TYPE_REQUIRED");
    }
}
