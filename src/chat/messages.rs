//! Chat messages and the parser of message files.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The roles a message may have: `system`, `user`, `assistant`, `tool`.
pub const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];

/// One message of a conversation, as chat templates see it (`message.role`,
/// `message.content`; `message['role']` works too).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who speaks: usually one of [`ROLES`] (templates decide what they accept).
    pub role: String,
    /// What is said.
    pub content: String,
}

impl ChatMessage {
    /// A message from its role and content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

fn invalid(index: Option<usize>, reason: impl Into<String>) -> Error {
    Error::ChatMessages {
        index,
        reason: reason.into(),
    }
}

/// Parses a message file: a JSON list of `{"role": ..., "content": ...}` objects, or an
/// object `{"messages": [...], "tools": [...]}` (`tools` optional). Returns the messages and
/// the tools (as given, for [`ChatRequest::with_tools`](super::ChatRequest::with_tools)).
///
/// Every role must be one of [`ROLES`] and every content a string; messages have no other
/// keys.
///
/// # Errors
/// [`Error::ChatMessages`] for malformed JSON, a document of another shape, or a message that
/// is not an object, lacks `role` or `content`, has a non-string one, an unknown role or an
/// unknown key; `index` names the message (`None` for the document as a whole).
pub fn parse_messages_json(text: &str) -> Result<(Vec<ChatMessage>, Option<serde_json::Value>)> {
    use serde_json::Value;
    let document: Value =
        serde_json::from_str(text).map_err(|e| invalid(None, format!("malformed JSON: {e}")))?;
    let (list, tools) = match document {
        Value::Array(list) => (list, None),
        Value::Object(mut object) => {
            if let Some(key) = object.keys().find(|k| *k != "messages" && *k != "tools") {
                return Err(invalid(
                    None,
                    format!("unknown key {key:?} (expected \"messages\" and optionally \"tools\")"),
                ));
            }
            let tools = match object.remove("tools") {
                None | Some(Value::Null) => None,
                Some(tools @ Value::Array(_)) => Some(tools),
                Some(other) => {
                    return Err(invalid(
                        None,
                        format!("\"tools\" must be a list, not {}", kind_of(&other)),
                    ))
                }
            };
            match object.remove("messages") {
                Some(Value::Array(list)) => (list, tools),
                Some(other) => {
                    return Err(invalid(
                        None,
                        format!("\"messages\" must be a list, not {}", kind_of(&other)),
                    ))
                }
                None => return Err(invalid(None, "the object has no \"messages\" list")),
            }
        }
        other => {
            return Err(invalid(
                None,
                format!(
                    "expected a list of messages or an object with \"messages\", not {}",
                    kind_of(&other)
                ),
            ))
        }
    };
    let messages = list
        .into_iter()
        .enumerate()
        .map(|(index, value)| message(index, value))
        .collect::<Result<Vec<_>>>()?;
    Ok((messages, tools))
}

fn message(index: usize, value: serde_json::Value) -> Result<ChatMessage> {
    use serde_json::Value;
    let Value::Object(object) = value else {
        return Err(invalid(
            Some(index),
            format!("expected an object, not {}", kind_of(&value)),
        ));
    };
    if let Some(key) = object.keys().find(|k| *k != "role" && *k != "content") {
        return Err(invalid(
            Some(index),
            format!("unknown key {key:?} (a message has \"role\" and \"content\")"),
        ));
    }
    let field = |name: &str| -> Result<String> {
        match object.get(name) {
            Some(Value::String(text)) => Ok(text.clone()),
            Some(other) => Err(invalid(
                Some(index),
                format!("\"{name}\" must be a string, not {}", kind_of(other)),
            )),
            None => Err(invalid(Some(index), format!("no \"{name}\""))),
        }
    };
    let role = field("role")?;
    if !ROLES.contains(&role.as_str()) {
        return Err(invalid(
            Some(index),
            format!(
                "unknown role {role:?} (expected one of {})",
                ROLES.join(", ")
            ),
        ));
    }
    let content = field("content")?;
    Ok(ChatMessage { role, content })
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(text: &str) -> Option<usize> {
        match parse_messages_json(text) {
            Err(Error::ChatMessages { index, .. }) => index,
            other => panic!("expected ChatMessages error, got {other:?}"),
        }
    }

    #[test]
    fn both_shapes_parse() {
        let (m, t) = parse_messages_json(r#"[{"role":"user","content":"hi"}]"#).unwrap();
        assert_eq!(m, [ChatMessage::new("user", "hi")]);
        assert!(t.is_none());
        let (m, t) = parse_messages_json(
            r#"{"messages":[{"content":"x","role":"system"}],"tools":[{"b":1,"a":2}]}"#,
        )
        .unwrap();
        assert_eq!(m, [ChatMessage::new("system", "x")]);
        // Key order is kept (as Python's json module keeps it).
        assert_eq!(t.unwrap().to_string(), r#"[{"b":1,"a":2}]"#);
    }

    #[test]
    fn bad_messages_name_their_index() {
        assert_eq!(index_of("[{"), None);
        assert_eq!(index_of(r#"{"messages": 3}"#), None);
        let ok = r#"{"role":"user","content":"a"}"#;
        assert_eq!(index_of(&format!(r#"[{ok},{{"role":"user"}}]"#)), Some(1));
        assert_eq!(
            index_of(&format!(r#"[{ok},{ok},{{"role":"bot","content":"a"}}]"#)),
            Some(2)
        );
        assert_eq!(index_of(r#"[{"role":"user","content":5}]"#), Some(0));
        assert_eq!(index_of(r#"[{"content":"a"}]"#), Some(0));
        assert_eq!(index_of(r#"["hello"]"#), Some(0));
    }
}
