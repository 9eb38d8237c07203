//! Decoding of argument fields that several plugins take in the same form.

use base64::Engine as _;

use crate::ToolError;

/// The bytes of a base64 argument field; a bad value is an `invalid` error naming `field`.
pub fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, ToolError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| ToolError::invalid(field, format!("not valid base64: {e}")))
}
