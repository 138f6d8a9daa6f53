//! What the wasm tests share.

/// The name of an `emit(kind, data)` kind (wasm `session::Emit`: 0 open, 1 message, 2 error,
/// 3 close).
pub fn kind_name(kind: u32) -> String {
    match kind {
        0 => "open".into(),
        1 => "message".into(),
        2 => "error".into(),
        3 => "close".into(),
        other => format!("unknown emit kind {other}"),
    }
}
