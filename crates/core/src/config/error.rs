//! What a config can get wrong: a parse error at a place, or a list of
//! invalid values (config/validate.rs), each naming its field.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}:{line}:{col}: {message}")]
    Parse {
        origin: String,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{}invalid config:\n{}", origin.as_ref().map(|o| format!("{o}: ")).unwrap_or_default(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        origin: Option<String>,
        problems: Vec<String>,
    },
}

impl ConfigError {
    pub fn in_file(self, path: &Path) -> Self {
        match self {
            ConfigError::Invalid { problems, .. } => ConfigError::Invalid {
                origin: Some(path.display().to_string()),
                problems,
            },
            other => other,
        }
    }

    /// The individual problems (one for a parse error).
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid { problems, .. } => problems.clone(),
            other => vec![other.to_string()],
        }
    }
}
