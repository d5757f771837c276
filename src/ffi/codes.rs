//! Return codes of llama.h mapped to typed errors, once.

use crate::error::DecodeError;

/// Maps the return code of `llama_decode` / `llama_encode`.
pub(crate) fn decode_result(code: i32) -> Result<(), DecodeError> {
    match code {
        0 => Ok(()),
        1 => Err(DecodeError::NoKvSlot),
        2 => Err(DecodeError::Aborted),
        -1 => Err(DecodeError::InvalidBatch),
        other => Err(DecodeError::Failed(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_variants() {
        assert_eq!(decode_result(0), Ok(()));
        assert_eq!(decode_result(1), Err(DecodeError::NoKvSlot));
        assert_eq!(decode_result(2), Err(DecodeError::Aborted));
        assert_eq!(decode_result(-1), Err(DecodeError::InvalidBatch));
        assert_eq!(decode_result(-3), Err(DecodeError::Failed(-3)));
    }
}
