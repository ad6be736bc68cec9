//! The human log format's field formatter: tracing-subscriber's default layout with every
//! control character of every field value, the message included, escaped.
//!
//! Ticket ids, topic names and error texts come from outside; printed raw, a newline in one
//! would start a forged log line and an ESC sequence would rewrite the terminal. The JSON
//! format escapes them already.

use std::error::Error;
use std::fmt::{self, Debug, Write};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultFields, DefaultVisitor, Writer};

/// Formats fields as [`DefaultFields`] does, with control characters (C0, DEL, C1) written as
/// Rust escapes: `\n`, `\t`, `\u{1b}`.
#[derive(Debug, Default)]
pub struct EscapedFields;

impl<'a> MakeVisitor<Writer<'a>> for EscapedFields {
    type Visitor = EscapedVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        EscapedVisitor(DefaultFields::new().make_visitor(target))
    }
}

/// [`DefaultVisitor`], given each value behind [`Escaped`].
pub struct EscapedVisitor<'a>(DefaultVisitor<'a>);

impl Visit for EscapedVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.record_debug(field, &Escaped(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        // As the default: the message as it is, other strings quoted.
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        // As the default (without its italics): the error, then its sources.
        match value.source() {
            None => self.record_debug(field, &format_args!("{value}")),
            Some(source) => self.record_debug(
                field,
                &format_args!("{value} {}.sources={:?}", field.name(), Sources(source)),
            ),
        }
    }
}

impl VisitOutput<fmt::Result> for EscapedVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.0.finish()
    }
}

impl VisitFmt for EscapedVisitor<'_> {
    fn writer(&mut self) -> &mut dyn Write {
        self.0.writer()
    }
}

/// A value's `Debug` text with its control characters escaped.
struct Escaped<'a>(&'a dyn Debug);

impl Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapeControls(f), "{:?}", self.0)
    }
}

/// Writes through, escaping control characters.
struct EscapeControls<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl Write for EscapeControls<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(char::is_control) {
            let c = rest[at..].chars().next().expect("a character at a match");
            self.0.write_str(&rest[..at])?;
            write!(self.0, "{}", c.escape_debug())?;
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// An error and its sources as `[a, b]`, as the default lists them.
struct Sources<'a>(&'a (dyn Error + 'static));

impl Debug for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut error = Some(self.0);
        while let Some(e) = error {
            list.entry(&format_args!("{e}"));
            error = e.source();
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What `f` logs in the human format, without time and colours.
    fn human(f: impl FnOnce()) -> String {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(EscapedFields)
            .without_time()
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buffer.lock().unwrap().clone()).unwrap()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    const FORGED: &str = "T-1\n2026-12-01T00:00:00Z  INFO slawatch: all clear\r\t\x1b[2J\x07\x7f\u{85}";
    const ESCAPED: &str = r"T-1\n2026-12-01T00:00:00Z  INFO slawatch: all clear\r\t\u{1b}[2J\u{7}\u{7f}\u{85}";

    #[test]
    fn control_characters_in_the_message_and_in_display_fields_are_escaped() {
        let out = human(|| tracing::info!(ticket = %FORGED, "ticket {FORGED} breached"));
        assert_eq!(
            out,
            format!(" INFO slawatch::logging::tests: ticket {ESCAPED} breached ticket={ESCAPED}\n")
        );
    }

    #[test]
    fn quoted_strings_spans_and_errors_are_escaped_too() {
        let error = io::Error::other(FORGED);
        let out = human(|| {
            let _span = tracing::info_span!("shard", topic = %FORGED).entered();
            tracing::warn!(ticket = FORGED, error = &error as &(dyn Error + 'static), "lost");
        });
        assert_eq!(out.lines().count(), 1, "{out:?}");
        assert!(!out.trim_end().contains(char::is_control), "{out:?}");
        assert!(out.contains(&format!("shard{{topic={ESCAPED}}}")), "{out:?}");
        assert!(out.contains(&format!("ticket=\"{ESCAPED}\"")), "{out:?}");
        assert!(out.contains(&format!("error={ESCAPED}")), "{out:?}");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("output\rlost")]
    struct Lost(#[source] io::Error);

    #[test]
    fn an_error_keeps_its_sources() {
        let error = Lost(io::Error::other("disk\nfull"));
        let out = human(|| tracing::error!(error = &error as &(dyn Error + 'static), "write failed"));
        assert!(
            out.ends_with("write failed error=output\\rlost error.sources=[disk\\nfull]\n"),
            "{out:?}"
        );
    }

    #[test]
    fn text_without_control_characters_is_unchanged() {
        let out = human(|| tracing::info!(ticket = %"T-1 ünïcode", partitions = 3, "consuming"));
        assert_eq!(
            out,
            " INFO slawatch::logging::tests: consuming ticket=T-1 ünïcode partitions=3\n"
        );
    }
}
