//! The matcher's behaviour table, derived rule by rule from heka.md §3, plus property tests.
//!
//! Every match case is evaluated on the owned [`Message`] and on a [`MessageView`] of its
//! encoding; both must give the expected answer.

use std::cell::Cell;

use proptest::prelude::*;

use super::pattern::{Pattern, literal, translate};
use super::*;
use crate::message::{
    Field, FieldIndex, FieldValue, IndexedView, Message, MessageAccess, MessageView, ValueType,
};

/// A message with every header set and fields of every type.
fn full() -> Message {
    let mut m = Message {
        uuid: (0u8..16).collect(),
        timestamp: 1_700_000_000_123_456_789,
        r#type: Some("nginx.access".into()),
        logger: Some("nginx".into()),
        severity: Some(6),
        payload: Some("Test Payload: error 42 in /var/log".into()),
        env_version: Some("0.8".into()),
        pid: Some(1234),
        hostname: Some("web-01.example.com".into()),
        fields: Vec::new(),
    };
    let mut multi = Field::string("str", "alpha");
    multi.value_string.push("beta".into());
    m.add_field(multi);
    m.add_field(Field::string("str", "second"));
    m.add_field(Field::bytes("bytes", b"bin/ary".to_vec()));
    let mut ints = Field::integer("int", 500);
    ints.value_integer.push(404);
    m.add_field(ints);
    m.add_field(Field::integer("int", 7));
    let mut dbl = Field::double("dbl", 3.5);
    dbl.value_double.push(-1.25);
    m.add_field(dbl);
    m.add_field(Field::double("nan", f64::NAN));
    m.add_field(Field::boolean("bool_t", true));
    m.add_field(Field::boolean("bool_f", false));
    let mut bools = Field::boolean("bools", true);
    bools.value_bool.push(false);
    m.add_field(bools);
    m.add_field(Field {
        name: "empty".into(),
        value_type: Some(ValueType::String as i32),
        ..Default::default()
    });
    m.add_field(Field::string("str_num", "5"));
    m.add_field(Field::string("TRUEstr", "TRUE"));
    m.add_field(Field::string("with space", "sp"));
    m.add_field(Field::string("x[y", "z"));
    m.add_field(Field::string("a'b", "q"));
    m.add_field(Field::string("esc", r#"it's "q" a\b"#));
    m.add_field(Field::integer("big", 1_700_000_000_123_456_789));
    m
}

/// A message with no header and no field at all.
fn bare() -> Message {
    Message::default()
}

/// `(expression, on full(), on bare())`
const MATCHES: &[(&str, bool, bool)] = &[
    // String headers, every relational operator.
    ("Type == 'nginx.access'", true, false),
    ("Type == \"nginx.access\"", true, false),
    ("Type != 'nginx.access'", false, true),
    ("Type < 'nginx.b'", true, true),
    ("Type <= 'nginx.access'", true, true),
    ("Type < 'nginx.access'", false, true),
    ("Type > 'nginx'", true, false),
    ("Type >= 'nginx.access'", true, false),
    ("Type > 'nginx.access'", false, false),
    ("Type == ''", false, true),
    ("Type >= ''", true, true),
    ("Type == 'nginx.acces'", false, false),
    ("Type == 'NGINX.ACCESS'", false, false),
    ("Logger == 'nginx'", true, false),
    ("Logger != ''", true, false),
    ("Logger < 'nginy'", true, true),
    (
        "Payload == 'Test Payload: error 42 in /var/log'",
        true,
        false,
    ),
    ("Payload > 'Test'", true, false),
    ("EnvVersion == '0.8'", true, false),
    ("EnvVersion < '0.9'", true, true),
    ("EnvVersion <= '0.7'", false, true),
    ("Hostname == 'web-01.example.com'", true, false),
    ("Hostname != 'web-02.example.com'", true, true),
    ("Hostname >= 'web-01'", true, false),
    // Uuid: its canonical lowercase string; "" when not 16 bytes.
    (
        "Uuid == '00010203-0405-0607-0809-0a0b0c0d0e0f'",
        true,
        false,
    ),
    (
        "Uuid == '00010203-0405-0607-0809-0A0B0C0D0E0F'",
        false,
        false,
    ),
    ("Uuid == '000102030405060708090a0b0c0d0e0f'", false, false),
    ("Uuid == ''", false, true),
    ("Uuid != ''", true, false),
    ("Uuid =~ /^00010203-/", true, false),
    ("Uuid =~ /0e0f$/", true, false),
    ("Uuid > '0'", true, false),
    ("Uuid < '1'", true, true),
    // Numeric headers, every relational operator; severity defaults to 7, pid to 0.
    ("Severity == 6", true, false),
    ("Severity == 7", false, true),
    ("Severity != 6", false, true),
    ("Severity < 7", true, false),
    ("Severity <= 6", true, false),
    ("Severity > 5", true, true),
    ("Severity >= 7", false, true),
    ("Severity == 6.0", true, false),
    ("Severity == 6e0", true, false),
    ("Severity == 0.6e1", true, false),
    ("Severity == 6.", true, false),
    ("Severity < 6.5", true, false),
    ("Severity > .5", true, true),
    ("Pid == 1234", true, false),
    ("Pid == 0", false, true),
    ("Pid != 0", true, false),
    ("Pid > 1e3", true, false),
    ("Pid < 1.5e3", true, true),
    ("Pid >= 1.234e+3", true, false),
    ("Pid <= 12340e-1", true, true),
    ("Timestamp == 1700000000123456789", true, false),
    // f64 comparison, as Heka: both sides round to the same double.
    ("Timestamp == 1700000000123456700", true, false),
    ("Timestamp == 1700000000123456900", false, false),
    ("Timestamp > 1.7e18", true, false),
    ("Timestamp == 0", false, true),
    ("Timestamp < 1", false, true),
    // Numbers that do not parse read as 0, as in Heka.
    ("Pid == 1-2", false, true),
    ("Pid == .", false, true),
    ("Pid == 1e", false, true),
    ("Pid == 1.2.3", false, true),
    ("Pid == 1e400", false, true),
    ("Severity == 1-2", false, false),
    // Fields: first field, first value by default; [fi] and [ai] select.
    ("Fields[str] == 'alpha'", true, false),
    ("Fields[str][0] == 'alpha'", true, false),
    ("Fields[str][0][0] == 'alpha'", true, false),
    ("Fields[str][0][1] == 'beta'", true, false),
    ("Fields[str][1] == 'second'", true, false),
    ("Fields[str][01] == 'second'", true, false),
    ("Fields[str][1][0] == 'second'", true, false),
    ("Fields[str] == 'beta'", false, false),
    ("Fields[str] == 'second'", false, false),
    // Missing field or element: only `== NIL` holds.
    ("Fields[str][0][2] == NIL", true, true),
    ("Fields[str][0][2] != NIL", false, false),
    ("Fields[str][1][1] == NIL", true, true),
    ("Fields[str][2] == NIL", true, true),
    ("Fields[str][2] != 'x'", false, false),
    ("Fields[str] != NIL", true, false),
    ("Fields[str] == NIL", false, true),
    ("Fields[missing] == NIL", true, true),
    ("Fields[missing] != NIL", false, false),
    ("Fields[missing] != 'x'", false, false),
    ("Fields[missing] == ''", false, false),
    ("Fields[missing] < 5", false, false),
    ("Fields[missing] != 5", false, false),
    ("Fields[missing] == FALSE", false, false),
    ("Fields[missing] == TRUE", false, false),
    ("Fields[missing] =~ /.*/", false, false),
    ("Fields[missing] !~ /x/", false, false),
    ("Fields[empty] == NIL", true, true),
    ("Fields[empty] != NIL", false, false),
    ("Fields[empty] == ''", false, false),
    // STRING fields: string tests; a number literal is false.
    ("Fields[str] != 'alpha'", false, false),
    ("Fields[str] < 'b'", true, false),
    ("Fields[str] <= 'alpha'", true, false),
    ("Fields[str] > 'alpha'", false, false),
    ("Fields[str] >= 'alpha'", true, false),
    ("Fields[str] == 5", false, false),
    ("Fields[str] != 5", false, false),
    ("Fields[str_num] == 5", false, false),
    ("Fields[str_num] != 5", false, false),
    ("Fields[str_num] == '5'", true, false),
    ("Fields[str] =~ /^al/", true, false),
    ("Fields[str] !~ /^al/", false, false),
    ("Fields[str] =~ /pha$/", true, false),
    ("Fields[str][0][1] =~ /^beta$/", true, false),
    ("Fields[str][0][1] =~ /^bet$/", false, false),
    // BYTES fields compare as strings.
    ("Fields[bytes] == 'bin/ary'", true, false),
    ("Fields[bytes] =~ /bin\\/ary/", true, false),
    ("Fields[bytes] =~ /^bin\\//", true, false),
    ("Fields[bytes] =~ /\\/ary$/", true, false),
    ("Fields[bytes] > 'bin'", true, false),
    ("Fields[bytes] > 5", false, false),
    // INTEGER and DOUBLE fields: numeric tests; string and regex literals are false.
    ("Fields[int] == 500", true, false),
    ("Fields[int] != 500", false, false),
    ("Fields[int] > 499", true, false),
    ("Fields[int] >= 500", true, false),
    ("Fields[int] < 500", false, false),
    ("Fields[int] <= 500", true, false),
    ("Fields[int][0][1] == 404", true, false),
    ("Fields[int][1] == 7", true, false),
    ("Fields[int][1][1] == NIL", true, true),
    ("Fields[int] == '500'", false, false),
    ("Fields[int] != '500'", false, false),
    ("Fields[int] =~ /500/", false, false),
    ("Fields[int] !~ /500/", false, false),
    ("Fields[int] == TRUE", false, false),
    ("Fields[int] == FALSE", false, false),
    ("Fields[int] != NIL", true, false),
    ("Fields[int] == NIL", false, true),
    ("Fields[big] == 1700000000123456789", true, false),
    ("Fields[dbl] == 3.5", true, false),
    ("Fields[dbl] > 3", true, false),
    ("Fields[dbl] < 3.5", false, false),
    ("Fields[dbl][0][1] < 0", true, false),
    ("Fields[dbl] == '3.5'", false, false),
    ("Fields[nan] == 0", false, false),
    ("Fields[nan] != 0", true, false),
    ("Fields[nan] < 1", false, false),
    ("Fields[nan] >= 0", false, false),
    // BOOL fields: `== TRUE` iff true; anything else asks "is it false?".
    ("Fields[bool_t] == TRUE", true, false),
    ("Fields[bool_t] == FALSE", false, false),
    ("Fields[bool_f] == TRUE", false, false),
    ("Fields[bool_f] == FALSE", true, false),
    ("Fields[bool_t] == 'true'", false, false),
    ("Fields[bool_f] == 'true'", true, false),
    ("Fields[bool_f] != 'false'", true, false),
    ("Fields[bool_t] != 'x'", false, false),
    ("Fields[bool_f] == 1", true, false),
    ("Fields[bool_t] == 1", false, false),
    ("Fields[bool_f] > 100", true, false),
    ("Fields[bool_f] =~ /x/", true, false),
    ("Fields[bool_f] !~ /x/", true, false),
    ("Fields[bool_t] =~ /.*/", false, false),
    ("Fields[bool_t] == NIL", false, true),
    ("Fields[bool_t] != NIL", true, false),
    ("Fields[bool_f] != NIL", true, false),
    ("Fields[bools][0][1] == FALSE", true, false),
    ("Fields[bools][0][1] == TRUE", false, false),
    ("Fields[bools][0][2] == NIL", true, true),
    ("Fields[bools][0][2] == FALSE", false, false),
    // TRUE/FALSE against a STRING field compare with the token text (Heka quirk).
    ("Fields[TRUEstr] == TRUE", true, false),
    ("Fields[TRUEstr] == FALSE", false, false),
    ("Fields[str] == TRUE", false, false),
    // Field names: anything but `]`.
    ("Fields[with space] == 'sp'", true, false),
    ("Fields[x[y] == 'z'", true, false),
    ("Fields[a'b] == 'q'", true, false),
    // String escapes: `\` + the quote is the quote; `\` + anything else stays as is.
    (r#"Fields[esc] == 'it\'s "q" a\b'"#, true, false),
    (r#"Fields[esc] == "it's \"q\" a\b""#, true, false),
    (r#"Fields[esc] == 'it\'s "q" a\\b'"#, false, false),
    (r#"Fields[esc] =~ /a\\b/"#, true, false),
    (r#"Fields[esc] =~ /"q"/"#, true, false),
    (r#"Fields[esc] =~ /^it's "q" a\\b$/"#, true, false),
    ("Type == 'nginx\\.access'", false, false),
    // Regexes: fast paths and the engine agree.
    ("Payload =~ /^Test/", true, false),
    ("Payload =~ /^(?:Test)/", true, false),
    ("Payload =~ /log$/", true, false),
    ("Payload =~ /(?:log)$/", true, false),
    (
        "Payload =~ /^Test Payload: error 42 in \\/var\\/log$/",
        true,
        false,
    ),
    ("Payload =~ /^Test$/", false, false),
    ("Payload =~ /\\/var\\//", true, false),
    ("Payload =~ /[\\/]var/", true, false),
    ("Payload =~ /error/", true, false),
    ("Payload !~ /error/", false, true),
    ("Payload =~ /ERROR/", false, false),
    ("Payload =~ /(?i)ERROR/", true, false),
    ("Payload =~ /\\d+ in/", true, false),
    ("Payload =~ /^\\w+ \\w+:/", true, false),
    ("Payload =~ /\\berror\\b/", true, false),
    ("Payload =~ /\\berr\\b/", false, false),
    ("Payload =~ /[[:digit:]]{2}/", true, false),
    ("Payload =~ /^Test\\./", false, false),
    ("Payload =~ /^Test\\ Payload/", true, false),
    ("Payload =~ /^T.st/", true, false),
    ("Payload =~ /^$/", false, true),
    ("Payload =~ //", true, true),
    ("Payload !~ //", false, false),
    ("Payload =~ /^/", true, true),
    ("Payload =~ /$/", true, true),
    ("Payload =~ /g\\$/", false, false),
    ("Type =~ /^nginx\\.access$/", true, false),
    ("Type =~ /^nginx|apache$/", true, false),
    ("Type !~ /^apache/", true, true),
    ("Hostname =~ /^web-\\d+\\./", true, false),
    ("Logger =~ /^ngin(x|e)$/", true, false),
    // Constants, precedence, parentheses.
    ("TRUE", true, true),
    ("FALSE", false, false),
    ("(TRUE)", true, true),
    ("((FALSE))", false, false),
    ("TRUE || FALSE", true, true),
    ("TRUE && FALSE", false, false),
    ("TRUE || FALSE && FALSE", true, true),
    ("FALSE && FALSE || TRUE", true, true),
    ("(TRUE || FALSE) && FALSE", false, false),
    ("FALSE || FALSE || TRUE", true, true),
    ("TRUE && TRUE && FALSE", false, false),
    ("TRUE && Type == 'nginx.access'", true, false),
    ("FALSE || Severity == 7", false, true),
    ("Type == 'x' || Severity == 6", true, false),
    ("Severity == 7 || Type == 'nginx.access'", true, true),
    ("Type == 'nginx.access' && Severity == 6", true, false),
    ("Type == 'nginx.access' && Severity == 7", false, false),
    (
        "Severity == 6 || Severity == 7 && Type == 'nginx.access'",
        true,
        false,
    ),
    (
        "(Severity == 6 || Severity == 7) && Type == ''",
        false,
        true,
    ),
    ("Severity == 6 || (Severity == 7 && Type == '')", true, true),
    (
        "((Type == 'nginx.access') && (Severity == 6 || Severity == 7))",
        true,
        false,
    ),
    (
        "Fields[int] == 500 && Fields[str] == 'alpha' && Fields[bool_t] == TRUE",
        true,
        false,
    ),
    ("Fields[str] == 'x' || Fields[str] == 'alpha'", true, false),
    ("Fields[missing] == NIL && Fields[str] == NIL", false, true),
    // Whitespace; a newline ends the expression.
    ("  Type=='nginx.access'&&Severity==6  ", true, false),
    ("\tType\t==\t'nginx.access'", true, false),
    ("Type == 'nginx.access'\n garbage ((", true, false),
];

/// `(expression, error position)`
const ERRORS: &[(&str, usize)] = &[
    ("", 0),
    ("   ", 0),
    ("\nType == 'x'", 0),
    ("Type", 4),
    ("Severity 5", 9),
    ("Type 'x'", 5),
    ("Type == 5", 8),
    ("Type == TRUE", 8),
    ("Type =~ 'x'", 8),
    ("Type == /x/", 8),
    ("Type == NIL", 8),
    ("Type ==", 7),
    ("Severity == 'x'", 12),
    ("Severity =~ /x/", 9),
    ("Severity == NIL", 12),
    ("Severity == TRUE", 12),
    ("Fields[x] != TRUE", 13),
    ("Fields[x] != FALSE", 13),
    ("Fields[x] < NIL", 12),
    ("Fields[x] > TRUE", 12),
    ("Fields[x] =~ 'x'", 13),
    ("Fields[x] == /x/", 13),
    ("Fields[x] =~ NIL", 13),
    ("Fields[x]", 9),
    ("NIL", 0),
    ("NIL == Fields[x]", 0),
    ("'x' == Type", 0),
    ("5 == Severity", 0),
    ("== 'x'", 0),
    ("Type == 'a' Type == 'b'", 12),
    ("Type == 'a' TRUE", 12),
    ("TRUE FALSE", 5),
    ("Type == 'x' == 'y'", 12),
    ("Type = 'a'", 5),
    ("Type ! 'a'", 5),
    ("TRUE | FALSE", 5),
    ("TRUE & FALSE", 5),
    ("Type == 'x' &&& TRUE", 14),
    ("TRUE &&", 7),
    ("TRUE ||", 7),
    ("&& TRUE", 0),
    ("(TRUE", 5),
    ("(TRUE || (FALSE)", 16),
    ("TRUE)", 4),
    ("()", 1),
    ("Foo == 'x'", 0),
    ("type == 'x'", 0),
    ("TYPE == 'x'", 0),
    ("Types == 'x'", 0),
    ("Type == 'x' && Bar", 15),
    ("Type == 'x' Foo", 12),
    ("Fields", 6),
    ("Fields == 1", 6),
    ("Fields [x] == 1", 6),
    ("Fields[] == 1", 7),
    ("Fields[x == 1", 6),
    ("Fields[x][a] == 1", 10),
    ("Fields[x][] == 1", 10),
    ("Fields[x][0][-1] == 1", 13),
    ("Fields[x][1 == 1", 11),
    ("Fields[x][0", 9),
    ("Fields[x][0][0][0] == 1", 15),
    ("Fields[x]] == 1", 9),
    ("Fields[x][99999999999999999999999] == 1", 10),
    ("Type == 'abc", 8),
    ("Type == \"abc'", 8),
    ("Type == 'abc\\'", 8),
    ("Type == 'ab\nc'", 8),
    ("Payload =~ /abc", 11),
    ("Payload =~ /abc\\/", 11),
    ("Payload =~ /a(/", 11),
    ("Payload =~ /[z-a]/", 11),
    ("Payload =~ /\\8/", 11),
    ("Payload =~ /x{2,1}/", 11),
    ("Severity == -1", 12),
    ("Severity == 1 @", 14),
    ("TRUE\r", 4),
    ("Severity == 6 && Type == 'x' &&", 31),
];

fn check_match(spec: &MatcherSpec, msg: &Message, want: bool, which: &str) {
    let bytes = msg.to_bytes();
    let view = MessageView::new(&bytes).expect("valid encoding");
    assert_eq!(
        spec.matches(msg),
        want,
        "{:?} on the owned {which} message",
        spec.source()
    );
    assert_eq!(
        spec.matches(&view),
        want,
        "{:?} on the {which} view",
        spec.source()
    );
    let dynamic: &dyn MessageAccess = &view;
    assert_eq!(spec.matches(dynamic), want);
    // as the router evaluates it: through a field index
    let mut index = FieldIndex::default();
    assert_eq!(
        spec.matches(&IndexedView::new(&view, &mut index)),
        want,
        "{:?} on the indexed {which} view",
        spec.source()
    );
}

#[test]
fn table_matches() {
    let (full, bare) = (full(), bare());
    for &(expr, on_full, on_bare) in MATCHES {
        let spec = MatcherSpec::parse(expr).unwrap_or_else(|e| panic!("{expr:?}: {e}"));
        assert_eq!(spec.source(), expr);
        assert_eq!(spec.to_string(), expr);
        check_match(&spec, &full, on_full, "full");
        check_match(&spec, &bare, on_bare, "bare");
    }
}

#[test]
fn table_errors() {
    for &(expr, pos) in ERRORS {
        match MatcherSpec::parse(expr) {
            Ok(_) => panic!("{expr:?} parsed"),
            Err(e) => {
                assert_eq!(e.position(), pos, "{expr:?}: {e}");
                let text = e.to_string();
                assert!(!text.contains('\n'), "{expr:?}: multi-line error {text:?}");
                if !matches!(e, MatcherError::Empty) {
                    assert!(text.contains(&format!("position {pos}")), "{text}");
                }
            }
        }
    }
}

#[test]
fn table_size() {
    assert!(MATCHES.len() + ERRORS.len() >= 150);
}

#[test]
fn error_messages_are_one_clear_sentence() {
    let msg = |s: &str| MatcherSpec::parse(s).unwrap_err().to_string();
    assert_eq!(
        msg("Severity 5"),
        "expected a comparison operator after 'Severity' at position 9, found '5'"
    );
    assert_eq!(
        msg("Type == 5"),
        "expected a quoted string after 'Type ==' at position 8, found '5'"
    );
    assert_eq!(
        msg("Type =~ 'x'"),
        "expected a regular expression /.../ after 'Type =~' at position 8, found ''x''"
    );
    assert_eq!(
        msg("Payload =~ /abc"),
        "unterminated regular expression starting at position 11"
    );
    assert_eq!(
        msg("Type == 'abc"),
        "unterminated string starting at position 8"
    );
    assert!(msg("Foo == 1").starts_with("unknown identifier 'Foo' at position 0"));
    assert_eq!(
        msg("Fields[status][a] == 1"),
        "Fields index must be decimal digits at position 15"
    );
    assert_eq!(
        msg("Payload =~ /a(/"),
        "invalid regular expression at position 11: unclosed group"
    );
    assert_eq!(
        msg("Type = 'x'"),
        "unexpected character '=' at position 5; did you mean '==' or '=~'?"
    );
    assert_eq!(
        msg("Fields[x] != TRUE"),
        "expected a number, a quoted string or NIL (TRUE and FALSE need ==) after \
         'Fields[x] !=' at position 13, found 'TRUE'"
    );
    assert_eq!(
        msg("Type == 'x' Type == 'y'"),
        "expected '&&', '||' or the end of the expression at position 12, found 'Type'"
    );
    assert_eq!(
        msg("(TRUE"),
        "expected '&&', '||' or ')' at position 5 to close the '(' at position 0, found the end \
         of the expression"
    );
    assert_eq!(msg(""), "the matcher expression is empty");
}

#[test]
fn specs_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<MatcherSpec>();
    send_sync::<MatcherSet>();
    send_sync::<MatcherError>();
}

#[test]
fn nesting_is_bounded() {
    let ok = format!("{}TRUE{}", "(".repeat(64), ")".repeat(64));
    assert!(MatcherSpec::parse(&ok).unwrap().matches(&bare()));
    let deep = format!("{}TRUE{}", "(".repeat(65), ")".repeat(65));
    let err = MatcherSpec::parse(&deep).unwrap_err();
    assert_eq!(err.position(), 64);
    // Long chains are flat, not deep.
    let chain = vec!["Severity == 7"; 20_000].join(" && ");
    assert!(MatcherSpec::parse(&chain).unwrap().matches(&bare()));
    let chain = vec!["Severity == 6"; 20_000].join(" || ");
    assert!(!MatcherSpec::parse(&chain).unwrap().matches(&bare()));
}

#[test]
fn constants_fold_away() {
    let count = |s: &str| MatcherSpec::parse(s).unwrap().test_count();
    assert_eq!(count("TRUE"), 0);
    assert_eq!(count("TRUE || Type == 'x'"), 0);
    assert_eq!(count("FALSE && Type == 'x'"), 0);
    assert_eq!(count("TRUE && Type == 'x'"), 1);
    assert_eq!(count("Type == 'x' && (Severity == 1 && Pid == 2)"), 3);
}

/// A message wrapper that counts the reads the matcher makes.
struct Counting<'a> {
    inner: &'a Message,
    fields: Cell<usize>,
    headers: Cell<usize>,
}

impl<'a> Counting<'a> {
    fn new(inner: &'a Message) -> Self {
        Counting {
            inner,
            fields: Cell::new(0),
            headers: Cell::new(0),
        }
    }
    fn hit(&self) {
        self.headers.set(self.headers.get() + 1);
    }
}

impl MessageAccess for Counting<'_> {
    fn uuid(&self) -> &[u8] {
        self.hit();
        MessageAccess::uuid(self.inner)
    }
    fn timestamp(&self) -> i64 {
        self.hit();
        MessageAccess::timestamp(self.inner)
    }
    fn msg_type(&self) -> &[u8] {
        self.hit();
        MessageAccess::msg_type(self.inner)
    }
    fn logger(&self) -> &[u8] {
        self.hit();
        MessageAccess::logger(self.inner)
    }
    fn severity(&self) -> i32 {
        self.hit();
        MessageAccess::severity(self.inner)
    }
    fn payload(&self) -> &[u8] {
        self.hit();
        MessageAccess::payload(self.inner)
    }
    fn env_version(&self) -> &[u8] {
        self.hit();
        MessageAccess::env_version(self.inner)
    }
    fn pid(&self) -> i32 {
        self.hit();
        MessageAccess::pid(self.inner)
    }
    fn hostname(&self) -> &[u8] {
        self.hit();
        MessageAccess::hostname(self.inner)
    }
    fn field_value(&self, name: &[u8], fi: usize, ai: usize) -> Option<FieldValue<'_>> {
        self.fields.set(self.fields.get() + 1);
        MessageAccess::field_value(self.inner, name, fi, ai)
    }
}

#[test]
fn evaluation_short_circuits() {
    let msg = full();
    let reads = |expr: &str| {
        let c = Counting::new(&msg);
        let spec = MatcherSpec::parse(expr).unwrap();
        let result = spec.matches(&c);
        (result, c.headers.get(), c.fields.get())
    };
    assert_eq!(reads("Type == 'nope' && Fields[int] == 500"), (false, 1, 0));
    assert_eq!(
        reads("Type == 'nginx.access' || Fields[int] == 500"),
        (true, 1, 0)
    );
    assert_eq!(reads("Type == 'nope' || Fields[int] == 500"), (true, 1, 1));
    assert_eq!(
        reads("(Type == 'nope' || Severity == 1) && Fields[int] == 500"),
        (false, 2, 0)
    );
    assert_eq!(
        reads("Type == 'nope' && Severity == 1 || Pid == 1234"),
        (true, 2, 0)
    );
    // A field referenced twice is read once.
    assert_eq!(
        reads("Fields[str] == 'x' || Fields[str] == 'y' || Fields[str] == 'alpha'"),
        (true, 0, 1)
    );
    assert_eq!(
        reads("Fields[str] == 'x' || Fields[str][0][1] == 'beta'"),
        (true, 0, 2)
    );
}

#[test]
fn matcher_set_reports_matching_indices() {
    let specs = [
        "Type == 'nginx.access'",
        "Severity == 7",
        "TRUE",
        "FALSE",
        "Fields[int] >= 500",
    ];
    let mut set: MatcherSet = specs
        .iter()
        .map(|s| MatcherSpec::parse(s).unwrap())
        .collect();
    for i in 0..70 {
        let n = set.push(MatcherSpec::parse(if i % 2 == 0 { "TRUE" } else { "FALSE" }).unwrap());
        assert_eq!(n, 5 + i);
    }
    assert_eq!(set.len(), 75);
    let full = full();
    let mut bits = MatchBits::default();
    set.evaluate(&full, &mut bits);
    let got: Vec<usize> = bits.iter().collect();
    let mut want = vec![0, 2, 4];
    want.extend((0..70).filter(|i| i % 2 == 0).map(|i| 5 + i));
    assert_eq!(got, want);
    assert_eq!(bits.count(), want.len());
    assert!(bits.contains(73) && !bits.contains(74) && !bits.contains(1000));
    let bare = set.matching(&bare());
    assert!(bare.contains(1) && bare.contains(2) && !bare.contains(0));
    assert!(MatcherSet::new().matching(&full).none());
}

#[test]
fn fast_paths_are_chosen() {
    let kind = |p: &str| match Pattern::compile(p, 0).unwrap() {
        Pattern::Prefix(l) => format!("prefix {}", String::from_utf8_lossy(&l)),
        Pattern::Suffix(l) => format!("suffix {}", String::from_utf8_lossy(&l)),
        Pattern::Exact(l) => format!("exact {}", String::from_utf8_lossy(&l)),
        Pattern::Contains(f) => format!("contains {}", String::from_utf8_lossy(f.needle())),
        Pattern::AnyOf(fs) => fs
            .iter()
            .map(|f| format!("contains {}", String::from_utf8_lossy(f.needle())))
            .collect::<Vec<_>>()
            .join(" or "),
        Pattern::Regex(_) => "regex".to_owned(),
    };
    assert_eq!(kind("^abc"), "prefix abc");
    assert_eq!(kind("abc$"), "suffix abc");
    assert_eq!(kind("^abc$"), "exact abc");
    assert_eq!(kind("abc"), "contains abc");
    assert_eq!(kind("^a\\.c"), "prefix a.c");
    assert_eq!(kind("^\\^a"), "prefix ^a");
    assert_eq!(kind("abc\\$"), "contains abc$");
    assert_eq!(kind("a\\$$"), "suffix a$");
    assert_eq!(kind("^/var/"), "prefix /var/");
    assert_eq!(kind("\\t"), "contains \t");
    assert_eq!(kind("^é"), "prefix é");
    assert_eq!(kind("^"), "prefix ");
    assert_eq!(kind("$"), "suffix ");
    assert_eq!(kind("^$"), "exact ");
    assert_eq!(kind(""), "contains ");
    assert_eq!(
        kind("timeout|refused"),
        "contains timeout or contains refused"
    );
    assert_eq!(kind("a\\||b"), "contains a| or contains b");
    assert_eq!(kind("a\\\\|b"), "contains a\\ or contains b");
    assert_eq!(kind("a|"), "contains a or contains ");
    for p in [
        "^a.c", "\\d", "(?i)abc", "a{2}", "^a|b", "^ab*", "x[y]", "\\x41", "[a|b]", "(a|b)", "a|b$",
    ] {
        assert_eq!(kind(p), "regex", "{p}");
    }
    assert!(literal("abc\\").is_none());
    assert!(Pattern::compile("a|b\\", 0).is_err());
    assert!(Pattern::compile("^abc\\", 0).is_err());
}

#[test]
fn re2_dialect_is_kept() {
    assert_eq!(translate(r"\d+"), "[0-9]+");
    assert_eq!(translate(r"[\d.]"), "[[0-9].]");
    assert_eq!(translate(r"[^\s]"), r"[^[\t\n\f\r ]]");
    assert_eq!(translate(r"[]a]"), r"[\]a]");
    assert_eq!(translate(r"[^]a]"), r"[^\]a]");
    assert_eq!(translate(r"[a[b]"), r"[a\[b]");
    assert_eq!(translate(r"[[:alpha:]&&~]"), r"[[:alpha:]\&\&\~]");
    assert_eq!(translate(r"\Qa.b\E+"), r"a\.b+");
    assert_eq!(translate(r"\Qa.b"), r"a\.b");
    assert_eq!(translate(r"\bx\B"), r"(?-u:\b)x(?-u:\B)");
    assert_eq!(translate(r"\p{Greek}\\d"), r"\p{Greek}\\d");
    let m = |p: &str, s: &str| Pattern::compile(p, 0).unwrap().is_match(s.as_bytes());
    assert!(!m(r"^\d$", "٣"), "RE2's \\d is ASCII");
    assert!(m(r"^\D$", "٣"));
    assert!(!m(r"^\w$", "é"));
    assert!(m(r"^\W$", "é"));
    assert!(!m(r"^\s$", "\u{a0}"));
    assert!(m(r"^[a[]+$", "[a["));
    assert!(m(r"^[&]$", "&"));
    assert!(m(r"\bb", "a b"));
    assert!(
        m(r"\bb", "éb"),
        "é is no ASCII word character, so RE2 sees a boundary"
    );
    assert!(m(r"^\p{Greek}$", "λ"));
    assert!(m(r"^.$", "λ"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// An unanchored alternation of literals takes the fast path and agrees with the regex
    /// engine, whichever branch occurs where.
    #[test]
    fn alternations_of_literals_agree_with_regex(
        lits in prop::collection::vec("[ab.*|\\\\é-]{0,4}", 2..4),
        pre in "[ab|é-]{0,3}",
        post in "[ab|é$-]{0,3}",
    ) {
        let pattern = lits.iter().map(|l| regex::escape(l)).collect::<Vec<_>>().join("|");
        let fast = Pattern::compile(&pattern, 0).unwrap();
        prop_assert!(matches!(fast, Pattern::AnyOf(_)), "{pattern} took no fast path");
        let slow = Pattern::regex(&pattern, 0).unwrap();
        let mut hays = vec![pre.clone(), String::new(), format!("{pre}{post}")];
        for l in &lits {
            hays.push(format!("{pre}{l}{post}"));
        }
        for hay in hays {
            prop_assert_eq!(
                fast.is_match(hay.as_bytes()),
                slow.is_match(hay.as_bytes()),
                "pattern {:?} on {:?}", pattern, hay
            );
        }
    }

    /// `^lit`, `lit$`, `^lit$` and `lit` take fast paths that agree with the regex engine.
    #[test]
    fn fast_paths_agree_with_regex(
        lit in "[ab.*+?()|^$\\[\\]{}/\\\\é -]{0,6}",
        pre in "[ab.é-]{0,3}",
        post in "[ab.é$-]{0,3}",
        mode in 0..4usize,
    ) {
        let escaped = regex::escape(&lit);
        let pattern = match mode {
            0 => format!("^{escaped}"),
            1 => format!("{escaped}$"),
            2 => format!("^{escaped}$"),
            _ => escaped.clone(),
        };
        let fast = Pattern::compile(&pattern, 0).unwrap();
        prop_assert!(!matches!(fast, Pattern::Regex(_)), "{pattern} took no fast path");
        let slow = Pattern::regex(&pattern, 0).unwrap();
        for hay in [
            lit.clone(),
            format!("{pre}{lit}"),
            format!("{lit}{post}"),
            format!("{pre}{lit}{post}"),
            pre.clone(),
            String::new(),
        ] {
            prop_assert_eq!(
                fast.is_match(hay.as_bytes()),
                slow.is_match(hay.as_bytes()),
                "pattern {:?} on {:?}", pattern, hay
            );
        }
    }

    /// Parsing never panics, and errors point inside the expression.
    #[test]
    fn parse_never_panics(s in any::<String>()) {
        match MatcherSpec::parse(&s) {
            Ok(spec) => {
                spec.matches(&full());
                spec.matches(&bare());
            }
            Err(e) => {
                prop_assert!(e.position() <= s.len());
                prop_assert!(!e.to_string().contains('\n'));
            }
        }
    }

    /// The same, on input built from the language's own pieces, which reaches deeper states.
    #[test]
    fn parse_never_panics_on_tokens(parts in proptest::collection::vec(prop_oneof![
        Just("Type"), Just("Severity"), Just("Fields[a]"), Just("Fields[a][1]"), Just("Fields["),
        Just("Fields[a][x]"), Just("Uuid"), Just("TRUE"), Just("FALSE"), Just("NIL"),
        Just("=="), Just("!="), Just("<"), Just(">="), Just("=~"), Just("!~"), Just("&&"),
        Just("||"), Just("("), Just(")"), Just("'x'"), Just("\"y\\\""), Just("/a/"), Just("/(/"),
        Just("/^b\\//"), Just("5"), Just(".5e"), Just(" "), Just("="), Just("&"), Just("\\"),
        Just("'"), Just("/"), Just("é"), Just("\n"),
    ], 0..12)) {
        let s: String = parts.concat();
        match MatcherSpec::parse(&s) {
            Ok(spec) => {
                let msg = full();
                let bytes = msg.to_bytes();
                let view = MessageView::new(&bytes).unwrap();
                prop_assert_eq!(spec.matches(&msg), spec.matches(&view));
            }
            Err(e) => prop_assert!(e.position() <= s.len(), "{:?}: {}", s, e),
        }
    }

    /// Compiled evaluation equals a plain reading of Heka's rules, and the owned message and
    /// its view always agree.
    #[test]
    fn compiled_matches_reference(msg in arb_message(), expr in arb_expr()) {
        let source = expr.render(0);
        let spec = MatcherSpec::parse(&source)
            .map_err(|e| TestCaseError::fail(format!("{source}: {e}")))?;
        let want = expr.eval(&msg);
        prop_assert_eq!(spec.matches(&msg), want, "{} on {:?}", source, msg);
        let bytes = msg.to_bytes();
        let view = MessageView::new(&bytes).unwrap();
        prop_assert_eq!(spec.matches(&view), want, "{} on the view of {:?}", source, msg);
        // `hekate trace`'s explanation reaches the same verdict, and names a test of the source.
        let why = spec.explain(&view);
        prop_assert_eq!(why.is_none(), want, "{} explained as {:?}", source, why);
        if let Some(term) = why {
            prop_assert!(term == "FALSE" || source.contains(&term), "{} not in {}", term, source);
        }
    }
}

// ---- A reference evaluator: a direct transcription of heka.md §3.3 over the owned message ----

#[derive(Clone, Debug)]
enum RefValue {
    Str(String),
    Num(f64),
    Re(&'static str),
    True,
    False,
    Nil,
}

#[derive(Clone, Debug)]
enum RefExpr {
    Const(bool),
    And(Box<RefExpr>, Box<RefExpr>),
    Or(Box<RefExpr>, Box<RefExpr>),
    Paren(Box<RefExpr>),
    /// header, operator, value (string or regex)
    Str(&'static str, &'static str, RefValue),
    /// header, operator, number
    Num(&'static str, &'static str, f64),
    /// name, fi, ai, operator, value
    Field(&'static str, usize, usize, &'static str, RefValue),
}

/// Patterns on which RE2 and the regex crate agree, fast and slow ones.
const PATTERNS: &[&str] = &[
    "^a", "b$", "^ab$", "a", "a.b", "^(a|b)", "", "b*$", "^$", "[ab]{2}",
];

impl RefValue {
    fn render(&self) -> String {
        match self {
            RefValue::Str(s) => format!("'{s}'"),
            RefValue::Num(n) => format!("{n:?}"),
            RefValue::Re(p) => format!("/{p}/"),
            RefValue::True => "TRUE".into(),
            RefValue::False => "FALSE".into(),
            RefValue::Nil => "NIL".into(),
        }
    }
}

impl RefExpr {
    /// Renders with the fewest parentheses the precedence allows (`level` 1: inside `&&`).
    fn render(&self, level: u8) -> String {
        match self {
            RefExpr::Const(b) => if *b { "TRUE" } else { "FALSE" }.into(),
            RefExpr::Paren(e) => format!("({})", e.render(0)),
            RefExpr::And(a, b) => format!("{} && {}", a.render(1), b.render(1)),
            RefExpr::Or(a, b) if level == 0 => format!("{} || {}", a.render(0), b.render(0)),
            RefExpr::Or(a, b) => format!("({} || {})", a.render(0), b.render(0)),
            RefExpr::Str(h, op, v) => format!("{h} {op} {}", v.render()),
            RefExpr::Num(h, op, n) => format!("{h} {op} {n:?}"),
            RefExpr::Field(name, fi, ai, op, v) => {
                format!("Fields[{name}][{fi}][{ai}] {op} {}", v.render())
            }
        }
    }

    fn eval(&self, m: &Message) -> bool {
        match self {
            RefExpr::Const(b) => *b,
            RefExpr::Paren(e) => e.eval(m),
            RefExpr::And(a, b) => a.eval(m) && b.eval(m),
            RefExpr::Or(a, b) => a.eval(m) || b.eval(m),
            RefExpr::Str(h, op, v) => {
                let s = match *h {
                    "Type" => m.r#type.clone().unwrap_or_default(),
                    "Logger" => m.logger.clone().unwrap_or_default(),
                    "Uuid" => crate::message::uuid_string(&m.uuid),
                    _ => m.payload.clone().unwrap_or_default(),
                };
                ref_string_test(s.as_bytes(), op, v)
            }
            RefExpr::Num(h, op, n) => {
                let v = match *h {
                    "Severity" => f64::from(m.severity.unwrap_or(7)),
                    "Pid" => f64::from(m.pid.unwrap_or(0)),
                    _ => m.timestamp as f64,
                };
                ref_numeric(v, op, *n)
            }
            RefExpr::Field(name, fi, ai, op, v) => {
                let Some(field) = m.find_all_fields(name).nth(*fi) else {
                    return matches!(v, RefValue::Nil) && *op == "==";
                };
                let Some(value) = field.value(*ai) else {
                    return matches!(v, RefValue::Nil) && *op == "==";
                };
                match value {
                    FieldValue::String(s) | FieldValue::Bytes(s) => ref_string_test(s, op, v),
                    FieldValue::Integer(i) => ref_numeric_value(i as f64, op, v),
                    FieldValue::Double(d) => ref_numeric_value(d, op, v),
                    FieldValue::Bool(b) => match v {
                        RefValue::Nil => *op != "==",
                        RefValue::True => b,
                        _ => !b,
                    },
                }
            }
        }
    }
}

fn ref_string_test(s: &[u8], op: &str, v: &RefValue) -> bool {
    let lit: &[u8] = match v {
        RefValue::Num(_) => return false,
        RefValue::Nil => return op == "!=",
        RefValue::Re(p) => {
            let re = regex::bytes::Regex::new(p).unwrap();
            return re.is_match(s) == (op == "=~");
        }
        RefValue::Str(l) => l.as_bytes(),
        RefValue::True => b"TRUE",
        RefValue::False => b"FALSE",
    };
    match op {
        "==" => s == lit,
        "!=" => s != lit,
        "<" => s < lit,
        "<=" => s <= lit,
        ">" => s > lit,
        _ => s >= lit,
    }
}

fn ref_numeric(a: f64, op: &str, b: f64) -> bool {
    match op {
        "==" => a == b,
        "!=" => a != b,
        "<" => a < b,
        "<=" => a <= b,
        ">" => a > b,
        _ => a >= b,
    }
}

fn ref_numeric_value(a: f64, op: &str, v: &RefValue) -> bool {
    match v {
        RefValue::Num(b) => ref_numeric(a, op, *b),
        RefValue::Nil => op == "!=",
        _ => false,
    }
}

fn arb_text() -> impl Strategy<Value = String> {
    "[ab]{0,3}"
}

fn arb_message() -> impl Strategy<Value = Message> {
    let field = (
        prop_oneof![Just("f"), Just("g")],
        0..5i32,
        proptest::collection::vec(0..4i64, 0..3),
    )
        .prop_map(|(name, ty, vals)| {
            let mut f = Field {
                name: name.into(),
                value_type: Some(ty),
                ..Default::default()
            };
            for v in vals {
                match ty {
                    0 => f.value_string.push(["", "a", "ab", "b"][v as usize].into()),
                    1 => f.value_bytes.push(["", "a", "ab", "b"][v as usize].into()),
                    2 => f.value_integer.push(v),
                    3 => f.value_double.push(v as f64 / 2.0),
                    _ => f.value_bool.push(v % 2 == 0),
                }
            }
            f
        });
    (
        proptest::option::of(arb_text()),
        proptest::option::of(arb_text()),
        proptest::option::of(arb_text()),
        proptest::option::of(0..8i32),
        proptest::option::of(0..3i32),
        0..3i64,
        prop_oneof![Just(Vec::new()), Just((0u8..16).collect::<Vec<u8>>())],
        proptest::collection::vec(field, 0..5),
    )
        .prop_map(
            |(ty, logger, payload, severity, pid, ts, uuid, fields)| Message {
                uuid,
                timestamp: ts,
                r#type: ty,
                logger,
                severity,
                payload,
                pid,
                fields,
                ..Default::default()
            },
        )
}

fn arb_relop() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("=="),
        Just("!="),
        Just("<"),
        Just("<="),
        Just(">"),
        Just(">=")
    ]
}

fn arb_leaf() -> impl Strategy<Value = RefExpr> {
    let regex = (
        prop_oneof![Just("=~"), Just("!~")],
        proptest::sample::select(PATTERNS),
    );
    let string_test = prop_oneof![
        (arb_relop(), arb_text()).prop_map(|(op, s)| (op, RefValue::Str(s))),
        regex.clone().prop_map(|(op, p)| (op, RefValue::Re(p))),
    ];
    let number = prop_oneof![
        Just(0.0),
        Just(0.5),
        Just(1.0),
        Just(1.5),
        Just(3.0),
        Just(7.0)
    ];
    let field_value = prop_oneof![
        (arb_relop(), arb_text()).prop_map(|(op, s)| (op, RefValue::Str(s))),
        (arb_relop(), number.clone()).prop_map(|(op, n)| (op, RefValue::Num(n))),
        regex.prop_map(|(op, p)| (op, RefValue::Re(p))),
        Just(("==", RefValue::True)),
        Just(("==", RefValue::False)),
        prop_oneof![Just("=="), Just("!=")].prop_map(|op| (op, RefValue::Nil)),
    ];
    prop_oneof![
        prop_oneof![Just(true), Just(false)].prop_map(RefExpr::Const),
        (
            prop_oneof![Just("Type"), Just("Logger"), Just("Payload"), Just("Uuid")],
            string_test
        )
            .prop_map(|(h, (op, v))| RefExpr::Str(h, op, v)),
        (
            prop_oneof![Just("Severity"), Just("Pid"), Just("Timestamp")],
            arb_relop(),
            number
        )
            .prop_map(|(h, op, n)| RefExpr::Num(h, op, n)),
        (
            prop_oneof![Just("f"), Just("g")],
            0..2usize,
            0..3usize,
            field_value
        )
            .prop_map(|(name, fi, ai, (op, v))| RefExpr::Field(name, fi, ai, op, v)),
    ]
}

fn arb_expr() -> impl Strategy<Value = RefExpr> {
    arb_leaf().prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| RefExpr::And(a.into(), b.into())),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| RefExpr::Or(a.into(), b.into())),
            inner.prop_map(|e| RefExpr::Paren(e.into())),
        ]
    })
}

#[test]
fn explain_names_the_first_test_that_failed() {
    let msg = full();
    let cases: &[(&str, Option<&str>)] = &[
        ("Type == 'nginx.access'", None),
        ("Type == 'syslog'", Some("Type == 'syslog'")),
        (
            "Type == 'nginx.access' && Severity < 4 && Logger == 'x'",
            Some("Severity < 4"),
        ),
        (
            "(Logger == 'a' || Fields[int] > 1000) && Type == 'nginx.access'",
            Some("Logger == 'a'"),
        ),
        ("Logger == 'a' || Type =~ /access$/", None),
        ("Type=='x'||Hostname!~/example/", Some("Type=='x'")),
        ("FALSE", Some("FALSE")),
        (
            "TRUE && Fields[missing] != NIL",
            Some("Fields[missing] != NIL"),
        ),
        (
            "Fields[int][0][1] == 404 && Payload =~ /nope/",
            Some("Payload =~ /nope/"),
        ),
    ];
    for (spec, want) in cases {
        let m = MatcherSpec::parse(spec).unwrap();
        let got = m.explain(&msg);
        assert_eq!(got.as_deref(), *want, "{spec}");
        // The explanation agrees with the compiled program.
        assert_eq!(got.is_none(), m.matches(&msg), "{spec}");
    }
}
