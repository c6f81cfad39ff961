//! The YAML parser's settings and wording for files people write (playbooks and
//! scenarios alike).

/// Most mappings and lists nested inside each other in a playbook or scenario. Real ones
/// nest five or six deep; the library's default (64) lets a hostile file use more stack
/// than a 2 MiB thread has in a debug build (each level of generic deserialization is
/// large), which aborts the process.
pub const MAX_YAML_DEPTH: usize = 24;

/// The YAML parser's options for files people write: the library's budgets, nesting
/// capped at [`MAX_YAML_DEPTH`].
pub fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! { max_depth: MAX_YAML_DEPTH },
    }
}

/// The parser's own words for a nesting limit, in the words of the rest of the messages.
pub fn friendly(message: String) -> String {
    if message.starts_with("budget breached: Depth") || message == "recursion limit exceeded" {
        return format!(
            "nested too deeply: more than {MAX_YAML_DEPTH} levels of lists and mappings"
        );
    }
    // The library's advice is for programmers ("set DuplicateKeyPolicy in Options").
    if let Some(rest) = message.strip_prefix("duplicate mapping key") {
        let key = rest
            .trim_end_matches(", set DuplicateKeyPolicy in Options if acceptable")
            .trim_start_matches(':')
            .trim();
        return if key.is_empty() {
            "duplicate key: each key may appear only once in a mapping".into()
        } else {
            format!("duplicate key `{key}`: each key may appear only once in a mapping")
        };
    }
    message
}
