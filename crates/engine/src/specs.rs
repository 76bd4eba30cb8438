//! Compiled campaign and Canvas specs, kept while their stored JSON is unchanged. A feed pass runs
//! on the store's writer thread, so it must not re-parse and re-compile every spec (regexes,
//! dates, Liquid) on every pass: it looks each one up here by id and stored text.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A spec as last seen: its stored text and what it compiled to. `None` remembers a spec that
/// does not take part (inactive, or it no longer compiles), so it is not retried until its text
/// changes.
type Entry<T> = (String, Option<Arc<T>>);

/// Compiled specs by id.
pub struct SpecCache<T> {
    entries: Mutex<HashMap<String, Entry<T>>>,
}

impl<T> Default for SpecCache<T> {
    fn default() -> Self {
        SpecCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> SpecCache<T> {
    /// The compiled spec for `id` at `text`, compiling (parse included) only when the text is
    /// new.
    pub fn get(
        &self,
        id: &str,
        text: &str,
        compile: impl FnOnce(&str) -> Option<T>,
    ) -> Option<Arc<T>> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seen, compiled)) = entries.get(id)
            && seen == text
        {
            return compiled.clone();
        }
        let compiled = compile(text).map(Arc::new);
        entries.insert(id.to_owned(), (text.to_owned(), compiled.clone()));
        compiled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_once_per_stored_text() {
        let cache = SpecCache::<usize>::default();
        let mut compiles = 0;
        let mut compile = |text: &str| {
            compiles += 1;
            (text != "inactive").then_some(text.len())
        };
        assert_eq!(cache.get("a", "one", &mut compile).as_deref(), Some(&3));
        assert_eq!(cache.get("a", "one", &mut compile).as_deref(), Some(&3));
        assert_eq!(cache.get("a", "three", &mut compile).as_deref(), Some(&5));
        assert_eq!(cache.get("b", "inactive", &mut compile), None);
        assert_eq!(cache.get("b", "inactive", &mut compile), None);
        assert_eq!(compiles, 3, "an unchanged text is never compiled again");
    }
}
