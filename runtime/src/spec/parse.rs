//! Parsing and validation of module.yaml (stub: being written).
use super::ModuleSpec;
use crate::Result;
use std::path::Path;

/// Reads and validates a module file.
pub fn load(path: &Path) -> Result<ModuleSpec> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| crate::Error::io(format!("reading {}", path.display()), e))?;
    parse_str(path, &text)
}

/// Validates module text that was read from `path`.
pub fn parse_str(path: &Path, _text: &str) -> Result<ModuleSpec> {
    Ok(ModuleSpec {
        path: path.to_path_buf(),
        endpoints: Vec::new(),
        ingresses: Vec::new(),
        egresses: Vec::new(),
        runtime: Default::default(),
    })
}
