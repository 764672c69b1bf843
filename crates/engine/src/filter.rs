//! Which files a search looks at: grep's glob filter and file-type filter, applied to
//! paths relative to the searched directory.
//!
//! File types are ripgrep's own definitions (the `ignore` crate ships them): `rust`
//! (`*.rs`), `py`, `js`, `ts`, `go`, `c`, `cpp`, `java`, `md`, `json`, `yaml`, `toml`,
//! `sh`, `html`, `css`... any name `rg --type-list` shows. A type matches on the file
//! name only.

use globset::GlobMatcher;
use ignore::types::{Types, TypesBuilder};

use crate::error::{Error, Result};
use crate::glob::compile_glob;

/// The type names an unknown type's error suggests.
const COMMON_TYPES: &[&str] = &[
    "rust", "py", "js", "ts", "go", "c", "cpp", "java", "kotlin", "swift", "ruby", "php", "cs",
    "md", "json", "yaml", "toml", "sh", "html", "css", "sql",
];

/// A compiled glob and file-type filter.
#[derive(Clone, Debug, Default)]
pub struct FileFilter {
    /// The glob, and whether it has a `/` (then it matches the relative path, else the
    /// file name).
    glob: Option<(GlobMatcher, bool)>,
    types: Option<Types>,
}

impl FileFilter {
    /// A filter keeping files that match `glob` (when given and not empty) and are of
    /// `file_type` (when given and not empty).
    pub fn new(glob: Option<&str>, file_type: Option<&str>) -> Result<FileFilter> {
        let glob = match glob.map(str::trim) {
            None | Some("") => None,
            Some(g) => {
                let g = g.trim_start_matches("./");
                Some((compile_glob(g)?, g.contains('/')))
            }
        };
        let types = match file_type.map(str::trim) {
            None | Some("") => None,
            Some(name) => Some(file_types(name)?),
        };
        Ok(FileFilter { glob, types })
    }

    /// True when the filter keeps nothing out.
    pub fn is_empty(&self) -> bool {
        self.glob.is_none() && self.types.is_none()
    }

    /// True when the file at `path` (relative to the searched directory, `/`
    /// separated) passes the filter.
    pub fn matches(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        if let Some((glob, whole_path)) = &self.glob {
            let subject = if *whole_path { path } else { name };
            if !glob.is_match(subject) {
                return false;
            }
        }
        match &self.types {
            Some(types) => types.matched(name, false).is_whitelist(),
            None => true,
        }
    }
}

/// ripgrep's definitions with `name` selected.
fn file_types(name: &str) -> Result<Types> {
    let mut builder = TypesBuilder::new();
    builder.add_defaults();
    let known = builder.definitions().iter().any(|d| d.name() == name);
    if !known || name == "all" {
        return Err(Error::UnknownFileType {
            name: name.to_owned(),
            known: format!(
                "{} (ripgrep's type names), or use a glob such as `*.ext`",
                COMMON_TYPES.join(", ")
            ),
        });
    }
    builder.select(name);
    builder.build().map_err(|e| Error::UnknownFileType {
        name: name.to_owned(),
        known: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_against_name_or_path() {
        let f = FileFilter::new(Some("*.rs"), None).expect("filter");
        assert!(f.matches("a.rs") && f.matches("src/x/a.rs"));
        assert!(!f.matches("a.rsx"));
        let f = FileFilter::new(Some("./src/*.rs"), None).expect("filter");
        assert!(f.matches("src/a.rs") && !f.matches("src/x/a.rs") && !f.matches("a.rs"));
        assert!(FileFilter::new(Some(""), Some(""))
            .expect("empty")
            .is_empty());
        assert!(FileFilter::new(Some("["), None).is_err());
    }

    #[test]
    fn ripgrep_types() {
        for name in COMMON_TYPES {
            FileFilter::new(None, Some(name)).expect(name);
        }
        let rust = FileFilter::new(None, Some("rust")).expect("rust");
        assert!(rust.matches("src/main.rs") && !rust.matches("src/main.py"));
        let py = FileFilter::new(Some("tests/**"), Some("py")).expect("py");
        assert!(py.matches("tests/a/t.py") && !py.matches("src/t.py") && !py.matches("tests/t.rs"));
        let md = FileFilter::new(None, Some("md")).expect("md");
        assert!(md.matches("README.md"));
        let e = FileFilter::new(None, Some("rusty")).expect_err("unknown type");
        assert!(e.to_string().contains("rust, py"), "{e}");
    }
}
