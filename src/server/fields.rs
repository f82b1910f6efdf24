//! Request fields as the OpenAPI document describes them: integers the way JSON Schema counts
//! them (`2000.0` is an integer) and the ranges the handlers enforce, taken from the same
//! constants the validation uses.

use serde::Deserialize;
use serde::de::{Deserializer, Error as _};
use utoipa::openapi::schema::{KnownFormat, Object, SchemaFormat, SchemaType, Type};

use std::collections::BTreeMap;

use super::inline::{MAX_FILES, MAX_TOTAL_BYTES};
use crate::data::program_io::{MAX_ARGS, MAX_ARGS_BYTES, MAX_ENV_BYTES, MAX_ENV_VARS, MAX_STDIN_BYTES, ProgramIo};
use crate::data::service::{CPU_LIMIT_RANGE, MEMORY_MB_RANGE, TIMEOUT_MS_RANGE};

/// An optional non-negative integer that also accepts integral floats (`2000.0`): JSON Schema's
/// `integer` type does, so a client that validates against the document may send them. A
/// fraction, a negative number or one beyond `T` is refused with what was wrong.
pub(super) fn integer<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    let whole = match (n.as_u64(), n.as_f64()) {
        (Some(u), _) => Some(u),
        // Exactly integral and inside u64 (2^64 itself is not).
        (None, Some(f)) if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) => Some(f as u64),
        _ => None,
    };
    let whole = whole.ok_or_else(|| D::Error::custom(format!("expected a whole number of 0 or more, got {n}")))?;
    T::try_from(whole).map(Some).map_err(|_| D::Error::custom(format!("{n} is too large")))
}

/// `integer` or `null`, between `lo` and `hi`.
fn ranged_integer(lo: u64, hi: u64, description: &str) -> Object {
    Object::builder()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(lo))
        .maximum(Some(hi))
        .description(Some(description))
        .build()
}

/// `timeoutMs`: [`TIMEOUT_MS_RANGE`].
pub(super) fn timeout_ms() -> Object {
    ranged_integer(TIMEOUT_MS_RANGE.0, TIMEOUT_MS_RANGE.1, "Wall-clock limit of the run in milliseconds.")
}

/// `memoryMb`: [`MEMORY_MB_RANGE`].
pub(super) fn memory_mb() -> Object {
    ranged_integer(u64::from(MEMORY_MB_RANGE.0), u64::from(MEMORY_MB_RANGE.1), "Memory limit of the sandbox in MiB.")
}

/// `limits.cpu`: [`CPU_LIMIT_RANGE`].
pub(super) fn cpu() -> Object {
    Object::builder()
        .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
        .minimum(Some(CPU_LIMIT_RANGE.0))
        .maximum(Some(CPU_LIMIT_RANGE.1))
        .description(Some("CPUs the run may use (a fraction is a share of one)."))
        .build()
}

/// `ttlSeconds`: at least 1; the maximum is the server's `--session-max-ttl`, set when the
/// document is served ([`super::openapi`]).
pub(super) fn ttl_seconds() -> Object {
    Object::builder()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(1u64))
        .description(Some("Seconds the session lives; default the server's --session-ttl."))
        .build()
}

/// `files`: path → content, at most [`MAX_FILES`] of them (their total size, at most
/// [`MAX_TOTAL_BYTES`], is checked by the handler: JSON Schema cannot sum lengths).
pub(super) fn files() -> Object {
    Object::builder()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(Object::builder().schema_type(Type::String)))
        .max_properties(Some(MAX_FILES))
        .description(Some(format!(
            "Relative path → file content; at most {MAX_FILES} files and {MAX_TOTAL_BYTES} bytes of content."
        )))
        .build()
}

/// `args`: at most [`MAX_ARGS`] strings ([`MAX_ARGS_BYTES`] in all, checked by the handler).
pub(super) fn args() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(Object::builder().schema_type(Type::String))
        .max_items(Some(MAX_ARGS))
        .description(Some(format!(
            "Arguments for the program, after the entry in its argv (`process.argv.slice(2)` in Node and Bun); \
             at most {MAX_ARGS} and {MAX_ARGS_BYTES} bytes in all."
        )))
        .build()
}

/// `stdin`: text, at most [`MAX_STDIN_BYTES`] bytes (and within the server's `--max-body`).
pub(super) fn stdin() -> Object {
    Object::builder()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(format!(
            "The program's stdin (UTF-8 text), then end of file; at most {MAX_STDIN_BYTES} bytes (and the whole \
             body within the server's --max-body). Default: empty."
        )))
        .build()
}

/// `env`: name → value, only names the operator allows.
pub(super) fn env() -> Object {
    Object::builder()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(Object::builder().schema_type(Type::String)))
        .max_properties(Some(MAX_ENV_VARS))
        .description(Some(format!(
            "Environment variables for the program: only names the operator allows (a service's `allowEnv` in \
             service.yaml; for inline code `ignite serve --allow-env`), never IGNITE_*, LD_*, PATH, HOME or one \
             the runtime or service sets; at most {MAX_ENV_VARS} and {MAX_ENV_BYTES} bytes in all."
        )))
        .build()
}

/// A request's `input` as the text the program gets (`{}` when absent), refused with 413
/// `input_too_large` past `max` bytes (`--max-input`).
pub(super) fn input_text(input: Option<&serde_json::Value>, max: usize) -> Result<String, super::error::ApiError> {
    let text = input.map_or_else(|| "{}".to_string(), |v| v.to_string());
    if text.len() > max {
        return Err(super::error::ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "input_too_large",
            format!("input is {} bytes serialised; the limit is {max}", text.len()),
        ));
    }
    Ok(text)
}

/// A request's `args`, `stdin` and `env` as the engine takes them, with the caps checked (so
/// that a request past them is refused before it waits for a slot).
pub(super) fn program_io(
    args: Option<Vec<String>>,
    stdin: Option<String>,
    env: Option<BTreeMap<String, String>>,
    outputs: Option<bool>,
) -> Result<ProgramIo, super::error::ApiError> {
    let io = ProgramIo {
        args: args.unwrap_or_default(),
        stdin: stdin.map(|s| s.into_bytes().into()).unwrap_or_default(),
        env: env.unwrap_or_default(),
        outputs: outputs.unwrap_or(false),
    };
    io.check_caps().map_err(|e| super::error::ApiError::from_io(&e))?;
    Ok(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "integer")]
        v: Option<u32>,
    }

    fn parse(json: &str) -> Result<Option<u32>, String> {
        serde_json::from_str::<T>(json).map(|t| t.v).map_err(|e| e.to_string())
    }

    #[test]
    fn integral_floats_are_integers_and_fractions_are_not() {
        assert_eq!(parse(r#"{"v": 2000}"#), Ok(Some(2000)));
        assert_eq!(parse(r#"{"v": 2000.0}"#), Ok(Some(2000)));
        assert_eq!(parse(r#"{"v": 2e3}"#), Ok(Some(2000)));
        assert_eq!(parse(r#"{"v": null}"#), Ok(None));
        assert_eq!(parse("{}"), Ok(None));
        for bad in ["2000.5", "-1", "-1.0", "1e300", "4294967296", "\"5\"", "true"] {
            assert!(parse(&format!(r#"{{"v": {bad}}}"#)).is_err(), "{bad} accepted");
        }
        assert!(parse(r#"{"v": 2000.5}"#).unwrap_err().contains("whole number"));
    }
}
