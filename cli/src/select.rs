//! Which tensors `quantize` packs.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::error::CliError;
use crate::input::FloatType;
use crate::safetensors::TensorInfo;

/// Tensors selected when no `--include` is given.
pub const DEFAULT_INCLUDE: &[&str] = &["*.weight"];
/// Tensors left out when no `--include` is given: embedding tables, which
/// are looked up rather than multiplied.
pub const DEFAULT_EXCLUDE: &[&str] = &["*embed*"];

/// A selection of tensors by name: those matching an include pattern and
/// no exclude pattern. Only 2-D F32, F16 or BF16 tensors are ever packed;
/// the others are copied whatever their names.
pub struct Selection {
    include: GlobSet,
    exclude: GlobSet,
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, CliError> {
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        let glob =
            Glob::new(p).map_err(|e| CliError::Usage(format!("bad pattern \"{p}\": {e}")))?;
        set.add(glob);
    }
    set.build()
        .map_err(|e| CliError::Usage(format!("bad patterns: {e}")))
}

impl Selection {
    /// The `--include` and `--exclude` globs (`*`, `?`, `[...]`, `{a,b}`;
    /// `*` also matches dots). Without `include`, [`DEFAULT_INCLUDE`]
    /// minus [`DEFAULT_EXCLUDE`] and `exclude`.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Selection, CliError> {
        let owned = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (include, exclude) = if include.is_empty() {
            let mut ex = owned(DEFAULT_EXCLUDE);
            ex.extend_from_slice(exclude);
            (owned(DEFAULT_INCLUDE), ex)
        } else {
            (include.to_vec(), exclude.to_vec())
        };
        Ok(Selection {
            include: glob_set(&include)?,
            exclude: glob_set(&exclude)?,
        })
    }

    /// Whether tensor `t` is packed: its name is selected and it is a 2-D
    /// float tensor.
    pub fn packs(&self, t: &TensorInfo) -> bool {
        self.include.is_match(&t.name)
            && !self.exclude.is_match(&t.name)
            && t.matrix().is_some()
            && FloatType::of(t.dtype).is_some()
    }
}
