//! Seed and CFG lists as people write them, one syntax for the CLI's flags and the studio's
//! fields: seeds as numbers, ranges `FROM-TO` (inclusive) or a mix (`0-3,9`); CFG scales as a
//! comma-separated list of numbers >= 0 (1 means no guidance).

/// Why a list could not be read; the message says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("seeds '{0}': write a number (7), a list (1,5,9), a range FROM-TO (0-3) or a mix (0-3,9)")]
    Seeds(String),
    #[error("seed range {from}-{to} is empty; write FROM-TO with FROM <= TO, e.g. 0-3")]
    EmptyRange { from: u64, to: u64 },
    #[error("seeds '{text}': {count} seeds; at most {max} per request")]
    TooManySeeds { text: String, count: u64, max: usize },
    #[error("CFG list '{text}': '{value}' is not a number >= 0 (1 means no guidance); write e.g. 1,2.5,5,7.5")]
    Cfg { text: String, value: String },
    #[error("CFG list '{text}': give between 1 and {max} values")]
    CfgCount { text: String, max: usize },
}

/// Seeds from `7`, `1,5,9`, `0-3` or `0-3,9`: at least one and at most `max`, in the order
/// written.
pub fn parse_seeds(text: &str, max: usize) -> Result<Vec<u64>, ListError> {
    let t = text.trim();
    let bad = || ListError::Seeds(t.to_string());
    let too_many = |count: u64| ListError::TooManySeeds { text: t.to_string(), count, max };
    let mut out = Vec::new();
    for part in t.split(',').map(str::trim) {
        if let Some((a, b)) = part.split_once('-') {
            let (from, to): (u64, u64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
            if to < from {
                return Err(ListError::EmptyRange { from, to });
            }
            let count = (to - from).saturating_add(1);
            if count > (max - out.len().min(max)) as u64 {
                return Err(too_many(out.len() as u64 + count));
            }
            out.extend(from..=to);
        } else {
            out.push(part.parse().map_err(|_| bad())?);
        }
    }
    if out.len() > max {
        return Err(too_many(out.len() as u64));
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// CFG scales from `1,2.5,5`: each finite and >= 0, at least one and at most `max`.
pub fn parse_cfgs(text: &str, max: usize) -> Result<Vec<f32>, ListError> {
    let t = text.trim();
    let values = t
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<f32>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| ListError::Cfg { text: t.to_string(), value: s.trim().to_string() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if values.is_empty() || values.len() > max {
        return Err(ListError::CfgCount { text: t.to_string(), max });
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lists_parse_or_explain() {
        assert_eq!(parse_seeds("0-3", 64), Ok(vec![0, 1, 2, 3]));
        assert_eq!(parse_seeds(" 1, 5,9 ", 64), Ok(vec![1, 5, 9]));
        assert_eq!(parse_seeds("7, 9,1-2", 64), Ok(vec![7, 9, 1, 2]));
        assert_eq!(parse_seeds("9-2", 64), Err(ListError::EmptyRange { from: 9, to: 2 }));
        assert!(parse_seeds("x", 64).unwrap_err().to_string().contains("FROM-TO"));
        assert!(parse_seeds("", 64).is_err() && parse_seeds("1,,2", 64).is_err());
        assert!(parse_seeds("0-1000", 64).unwrap_err().to_string().contains("at most 64"));
        assert!(parse_seeds("0-62,70,71", 64).unwrap_err().to_string().contains("65 seeds"));
        assert_eq!(
            parse_seeds(&format!("0-{}", u64::MAX), 4096).unwrap_err(),
            ListError::TooManySeeds { text: format!("0-{}", u64::MAX), count: u64::MAX, max: 4096 }
        );
    }

    #[test]
    fn cfg_lists_parse_or_explain() {
        assert_eq!(parse_cfgs("1, 7.5", 16), Ok(vec![1.0, 7.5]));
        assert!(parse_cfgs("1,-2", 16).unwrap_err().to_string().contains("'-2'"));
        assert!(parse_cfgs("1,nan", 16).is_err() && parse_cfgs("", 16).is_err());
        assert_eq!(parse_cfgs("1,2,3", 2), Err(ListError::CfgCount { text: "1,2,3".into(), max: 2 }));
    }
}
