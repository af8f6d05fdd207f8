//! JSON request bodies read field by field: a fault names the field by its
//! path (e.g. `drmPolicyConfig.widevine.hdcp`) and says what is wrong in the
//! API's words, never in Rust type names.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::params::ParamError;

/// Reads `body` as a `T`; a fault names the field at fault by its path.
pub fn from_json<T: DeserializeOwned>(body: &Value) -> Result<T, ParamError> {
    serde_path_to_error::deserialize(body).map_err(|error| {
        // A fault of the body as a whole (a missing field) has the path ".".
        let path = match error.path().to_string() {
            root if root == "." => "body".to_owned(),
            path => path,
        };
        ParamError::field(path, plain_words(&error.into_inner().to_string()))
    })
}

/// Reads `body` as a `T` that serializes back to the same shape, refusing
/// what serde would take in place of the shape: an array for an object,
/// a map for an enum's string.
pub fn from_json_strict<T: DeserializeOwned + Serialize>(body: &Value) -> Result<T, ParamError> {
    let value: T = from_json(body)?;
    let canonical = serde_json::to_value(&value)
        .map_err(|error| ParamError::new("body", format!("cannot be read ({error})")))?;
    same_shape("", body, &canonical)?;
    Ok(value)
}

fn same_shape(path: &str, given: &Value, canonical: &Value) -> Result<(), ParamError> {
    let at = || match path {
        "" => "body".to_owned(),
        path => path.to_owned(),
    };
    match (given, canonical) {
        (Value::Object(given), Value::Object(canonical)) => {
            for (key, value) in given {
                let Some(expected) = canonical.get(key) else {
                    continue;
                };
                let path = match path {
                    "" => key.clone(),
                    parent => format!("{parent}.{key}"),
                };
                same_shape(&path, value, expected)?;
            }
            Ok(())
        }
        (Value::Array(_), Value::Object(_)) => {
            Err(ParamError::field(at(), "must be an object, not an array"))
        }
        (Value::Object(_) | Value::Array(_), Value::String(_)) => {
            Err(ParamError::field(at(), "must be a string"))
        }
        _ => Ok(()),
    }
}

/// Serde's words for a type mismatch, with Rust type names replaced.
fn plain_words(message: &str) -> String {
    let Some((found, expected)) = message.split_once(", expected ") else {
        return message.to_owned();
    };
    let found = found.trim_start_matches("invalid type: ");
    let wanted = match expected {
        _ if expected.starts_with("struct ") => "an object",
        _ if expected.starts_with("enum ") || expected == "string or map" => "a string",
        _ if expected.starts_with("a map") || expected.starts_with("map") => "an object",
        _ => return message.to_owned(),
    };
    format!("must be {wanted}, not {found}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_type_names_give_way_to_api_words() {
        assert_eq!(
            plain_words("invalid type: integer `5`, expected struct PolicySettings"),
            "must be an object, not integer `5`"
        );
        assert_eq!(
            plain_words("invalid type: integer `5`, expected string or map"),
            "must be a string, not integer `5`"
        );
        assert_eq!(
            plain_words("missing field `siteName`"),
            "missing field `siteName`"
        );
    }
}
