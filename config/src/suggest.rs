//! "Did you mean …?" — the closest known name to a misspelled one.

/// The candidate closest to `word` by edit distance (case-insensitive), if it is close enough to
/// be a plausible misspelling rather than a different word.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(2);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == word {
            continue;
        }
        let distance = strsim::levenshtein(&word_lower, &candidate.to_lowercase());
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// The "; did you mean `x`?" tail of a message, or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_closest_plausible_name() {
        let types = ["TcpInput", "UdpInput", "TcpOutput"];
        assert_eq!(closest("TcpImput", types), Some("TcpInput"));
        assert_eq!(closest("tcpinput", types), Some("TcpInput"));
        assert_eq!(closest("Elasticsearch", types), None);
        assert_eq!(closest("adress", ["address", "net"]), Some("address"));
        // Distance counts characters, not bytes.
        assert_eq!(closest("résumé", ["resume", "size"]), Some("resume"));
    }

    #[test]
    fn the_suggestion_tail_names_the_closest_candidate_or_nothing() {
        let options = ["address", "splitter", "decoder"];
        assert_eq!(did_you_mean("decodr", options), "; did you mean `decoder`?");
        assert_eq!(did_you_mean("hostname", options), "");
        assert_eq!(
            did_you_mean("address", options),
            "",
            "an exact name is not suggested"
        );
    }
}
