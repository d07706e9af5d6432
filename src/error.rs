//! Errors as one line of text: an error and its causes, `a: b: c`. Owns nothing else; every
//! layer may use it (it depends on no module of nslat).

/// An error and its causes as one line, `a: b: c`: each message's line breaks become spaces, an
/// empty message is left out, and so is a cause whose text the line already holds (an error that
/// prints its source in its own message as well). For `Error:` lines and for reports that keep
/// errors as text.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    one_line(std::iter::successors(Some(e), |e| e.source()).map(|e| e.to_string()))
}

fn one_line(messages: impl Iterator<Item = String>) -> String {
    let mut line = String::new();
    for m in messages {
        let m = m.replace('\n', " ");
        if m.is_empty() || line.contains(&m) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&m);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_printed_once() {
        let chain = ["compare", "control connection: too large", "too large"];
        assert_eq!(
            one_line(chain.iter().map(|s| s.to_string())),
            "compare: control connection: too large"
        );
        let e = anyhow::anyhow!(crate::bench::client::ClientError::from(
            crate::bench::control::ControlError::TooLarge(1 << 30)
        ))
        .context("TCP_RR to 127.0.0.1:1");
        let line = error_chain(e.as_ref());
        assert_eq!(line.matches("larger than the limit").count(), 1, "{line}");
        assert!(line.starts_with("TCP_RR to 127.0.0.1:1: "), "{line}");
    }

    #[test]
    fn line_breaks_and_empty_messages_do_not_break_the_line() {
        let chain = ["nft", "", "line one\nline two"];
        assert_eq!(
            one_line(chain.iter().map(|s| s.to_string())),
            "nft: line one line two"
        );
    }
}
