//! Helpers shared by the API's integration tests.

// Each test crate uses only some of these helpers.
#![allow(dead_code)]

use std::path::Path;

/// The lines of every committed file a file sink wrote into `dir`, sorted; panics if a
/// file is still hidden (in progress or pending), as none may be once the job ended.
pub fn committed_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with('.'),
            "{name} in {} is not committed",
            dir.display()
        );
        let text = std::fs::read_to_string(e.path()).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    lines.sort();
    lines
}
