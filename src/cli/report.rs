//! What every command returns: text for people, one JSON object for scripts
//! (`--json`). cli/mod.rs prints it.

/// What a command prints: text for people, one JSON object for scripts.
pub struct Report {
    pub text: String,
    pub json: serde_json::Value,
}
