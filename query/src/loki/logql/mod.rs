//! LogQL: a lexer ([`lexer`]), a recursive-descent parser ([`parser`]) and the syntax tree
//! ([`ast`]). What is supported: stream selectors (`=`, `!=`, `=~`, `!~`); line filters
//! (`|=`, `!=`, `|~`, `!~`, with `or`); `| json` (all fields or `name="path"`), `| logfmt`,
//! label filters (strings, numbers, durations; `and`, `or`, `,`, parentheses),
//! `| line_format` (`{{.label}}`, `{{__line__}}`), `| drop`, `| keep`, `| decolorize`;
//! `count_over_time`, `rate`, `bytes_over_time`, `bytes_rate`, `absent_over_time` with
//! `offset`; `sum`, `avg`, `min`, `max`, `count`, `stddev`, `stdvar`, `topk`, `bottomk` with
//! `by`/`without`; `vector(n)`, numbers, arithmetic, comparisons (with `bool`) and `and`,
//! `or`, `unless` between series with the same labels. Anything else is refused with a message
//! naming it (`unwrap`, `pattern`, `regexp`, `label_format`, `on()`/`ignoring()`).

pub mod ast;
pub mod lexer;
pub mod parser;

pub use parser::parse;
