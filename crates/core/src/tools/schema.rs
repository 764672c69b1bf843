//! The JSON schema agents see for a tool's input, derived from its Rust type.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{Map, Value};

/// The JSON schema of `I`, tidied for models: an object schema whose optional
/// arguments are plain types (not `[T, "null"]` unions, which some clients reject)
/// without `default: null`, with no Rust-specific `format`s (`uint`, `double`), nested
/// types inlined (no `$ref`), and descriptions on one line per paragraph. The type's
/// own title and doc are dropped: the tool's description says what it does.
pub fn input_schema<I: JsonSchema>() -> Map<String, Value> {
    let schema = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<I>();
    let mut object = match schema.to_value() {
        Value::Object(object) => object,
        // Derived schemas of structs are objects; an empty object schema accepts any
        // arguments, which parsing then checks.
        _ => Map::new(),
    };
    object.insert("type".into(), "object".into());
    // A tool without arguments still lists none: some clients require `properties`.
    object
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    object.remove("title");
    object.remove("description");
    if let Some(Value::Object(props)) = object.get_mut("properties") {
        for prop in props.values_mut() {
            if let Value::Object(prop) = prop {
                tidy_property(prop);
            }
        }
    }
    object
}

fn tidy_property(prop: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = prop.get("type") {
        let mut non_null = types.iter().filter(|t| t.as_str() != Some("null"));
        if let (Some(only), None) = (non_null.next(), non_null.next()) {
            let only = only.clone();
            prop.insert("type".into(), only);
        }
    }
    if prop.get("default") == Some(&Value::Null) {
        prop.remove("default");
    }
    prop.remove("format");
    if let Some(Value::String(text)) = prop.get_mut("description") {
        *text = unwrap_lines(text);
    }
}

/// Joins the lines of each paragraph of a doc comment with spaces.
fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|para| para.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test input.
    #[derive(JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        /// Required, with a doc
        /// over two lines.
        name: String,
        /// Optional.
        #[serde(default)]
        count: Option<u32>,
    }

    #[test]
    fn optional_fields_are_plain_and_docs_are_unwrapped() {
        let schema = Value::Object(input_schema::<Sample>());
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], serde_json::json!(["name"]));
        assert_eq!(
            schema["properties"]["name"]["description"],
            "Required, with a doc over two lines."
        );
        assert_eq!(schema["properties"]["count"]["type"], "integer");
        assert!(schema.get("title").is_none(), "{schema}");
        assert!(!schema.to_string().contains("null"), "{schema}");
        assert!(!schema.to_string().contains("format"), "{schema}");
    }
}
