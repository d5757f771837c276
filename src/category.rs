//! [`Category`]: who can fix an error. Its own module so that the pure-Rust layers (`gguf`,
//! `hardware`) can name it without depending on the safe layer's error type.

use std::fmt;

/// Who can fix an error, roughly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Category {
    /// The llama.cpp libraries are missing, broken or of the wrong build.
    Installation,
    /// The machine cannot run what was asked (CPU features, GPU, driver, memory).
    Hardware,
    /// The model file is missing, corrupt or unsupported.
    Model,
    /// A parameter, environment variable or call sequence is wrong.
    Configuration,
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Category::Installation => "installation",
            Category::Hardware => "hardware",
            Category::Model => "model",
            Category::Configuration => "configuration",
        })
    }
}
