//! Prompt validation and normalization, shared by every text encoder.
//!
//! The rules, in order ([`normalize_prompt`]):
//! 1. Control characters (Unicode `Cc`: U+0000–U+001F, U+007F–U+009F, so tabs, newlines and NUL
//!    too) become spaces.
//! 2. Runs of whitespace collapse to one ASCII space; leading and trailing whitespace go.
//! 3. A prompt with nothing visible left (empty, blank, or only control or zero-width
//!    characters) is an error, [`TextError::EmptyPrompt`]: it cannot describe a video.
//! 4. Everything else is kept as written: emoji (with their zero-width joiners and variation
//!    selectors), accents, any script. Encoders may still map characters their vocabulary
//!    lacks to an unknown token (MiniLM turns most emoji into `[UNK]`).
//! 5. A prompt longer than [`MAX_PROMPT_CHARS`] characters is clamped to its first
//!    `MAX_PROMPT_CHARS` characters and reported as truncated ([`Prompt::clamped`], then
//!    [`TextFeatures::truncated`](super::TextFeatures::truncated)). Encoders keep at most a few
//!    hundred tokens, so the clamp only bounds the tokenizer's work on pasted walls of text.

use super::TextError;

/// Longest prompt, in characters (Unicode scalar values), kept before tokenization.
pub const MAX_PROMPT_CHARS: usize = 1000;

/// A normalized prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The normalized text (never empty).
    pub text: String,
    /// The input was longer than [`MAX_PROMPT_CHARS`] characters and its tail was dropped.
    pub clamped: bool,
}

/// Characters that draw nothing and are not whitespace: zero-width space/joiners, direction
/// marks, word joiner and invisible operators, soft hyphen, byte-order mark, variation
/// selectors. Kept in the text (emoji sequences need them) but not counted as content.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{E0100}'..='\u{E01EF}')
}

/// Normalizes a prompt by the module's rules; an empty or blank prompt is an error.
pub fn normalize_prompt(p: &str) -> Result<Prompt, TextError> {
    let mut text = String::with_capacity(p.len().min(4 * MAX_PROMPT_CHARS));
    let mut chars = 0usize;
    let mut pending_space = false;
    let mut clamped = false;
    for c in p.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c.is_whitespace() {
            pending_space = !text.is_empty();
            continue;
        }
        let need = usize::from(pending_space) + 1;
        if chars + need > MAX_PROMPT_CHARS {
            clamped = true;
            break;
        }
        if pending_space {
            text.push(' ');
            pending_space = false;
        }
        text.push(c);
        chars += need;
    }
    if !text.chars().any(|c| !is_invisible(c)) {
        return Err(TextError::EmptyPrompt);
    }
    Ok(Prompt { text, clamped })
}

/// [`normalize_prompt`]'s text alone: the prompt as encoders see it, or why it is refused.
/// Use `normalize_prompt` to also learn whether it was clamped.
pub fn validate_prompt(p: &str) -> Result<String, TextError> {
    normalize_prompt(p).map(|p| p.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_blank_and_invisible_prompts_are_refused() {
        for p in ["", " ", "\t\n\r ", "\u{0}\u{7}\u{1b}", "\u{200B}\u{FEFF}", " \u{85} \u{A0} "] {
            let e = validate_prompt(p).expect_err("blank prompt");
            assert!(matches!(e, TextError::EmptyPrompt), "{p:?}: {e}");
            assert!(e.to_string().contains("describe the video"), "{e}");
        }
    }

    #[test]
    fn controls_become_spaces_and_whitespace_collapses() {
        assert_eq!(validate_prompt("  a\tred\n\ncircle\u{0}moves\u{7f} ").expect("valid"), "a red circle moves");
        assert_eq!(validate_prompt("x").expect("valid"), "x");
    }

    #[test]
    fn emoji_accents_and_scripts_are_kept() {
        let family = "👩\u{200D}👩\u{200D}👧 dances ❤\u{FE0F} Ça 猫";
        assert_eq!(validate_prompt(family).expect("valid"), family);
        assert_eq!(validate_prompt("🎥").expect("emoji alone is content"), "🎥");
    }

    #[test]
    fn long_prompts_are_clamped_and_reported() {
        let long = "ab ".repeat(5000); // 15,000 characters
        let p = normalize_prompt(&long).expect("valid");
        assert!(p.clamped);
        assert!(p.text.chars().count() <= MAX_PROMPT_CHARS);
        assert!(p.text.chars().count() >= MAX_PROMPT_CHARS - 2);
        assert!(!p.text.ends_with(' '));
        let exact = "x".repeat(MAX_PROMPT_CHARS);
        let p = normalize_prompt(&exact).expect("valid");
        assert!(!p.clamped);
        assert_eq!(p.text, exact);
        // Multi-byte characters are counted as characters, never split.
        let p = normalize_prompt(&"é🙂".repeat(MAX_PROMPT_CHARS)).expect("valid");
        assert!(p.clamped);
        assert_eq!(p.text.chars().count(), MAX_PROMPT_CHARS);
    }
}
