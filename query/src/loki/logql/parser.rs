//! A recursive-descent LogQL parser over the lexer's tokens, with PromQL's operator
//! precedence for metric queries. Depth is bounded ([`MAX_DEPTH`]) so no query can exhaust
//! the stack; regular expressions are compiled with a size limit.

use super::ast::*;
use super::lexer::{Spanned, Tok, lex};
use regex::{Regex, RegexBuilder};

/// Longest query taken, in bytes.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Deepest nesting of parentheses and aggregations.
pub const MAX_DEPTH: usize = 64;
/// Largest compiled regular expression, in bytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Parses a LogQL query.
pub fn parse(text: &str) -> Result<Expr, String> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(format!(
            "the query is {} bytes, more than the limit of {MAX_QUERY_BYTES}",
            text.len()
        ));
    }
    let toks = lex(text)?;
    if toks.is_empty() {
        return Err(
            "the query is empty: write a stream selector such as {service=\"checkout\"}".into(),
        );
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        len: text.len(),
    };
    let e = p.expr(0)?;
    if let Some(t) = p.toks.get(p.pos) {
        return Err(format!(
            "unexpected {} at offset {}",
            describe(&t.tok),
            t.at
        ));
    }
    Ok(e)
}

struct Parser {
    toks: Vec<Spanned>,
    pos: usize,
    depth: usize,
    len: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Str(s) => format!("string \"{s}\""),
        Tok::Number(n) => format!("number {n}"),
        Tok::Duration(_) => "a duration".into(),
        other => format!("'{}'", symbol(other)),
    }
}

fn symbol(t: &Tok) -> &'static str {
    match t {
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::Comma => ",",
        Tok::Pipe => "|",
        Tok::PipeEq => "|=",
        Tok::PipeTilde => "|~",
        Tok::NotEq => "!=",
        Tok::NotTilde => "!~",
        Tok::Eq => "=",
        Tok::EqEq => "==",
        Tok::EqTilde => "=~",
        Tok::Gt => ">",
        Tok::Ge => ">=",
        Tok::Lt => "<",
        Tok::Le => "<=",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::Percent => "%",
        Tok::Caret => "^",
        _ => "?",
    }
}

/// Compiles a pattern, anchored or not, with the size limit.
pub fn compile(pattern: &str, anchored: bool) -> Result<Regex, String> {
    let p = if anchored {
        format!("^(?:{pattern})$")
    } else {
        pattern.to_string()
    };
    RegexBuilder::new(&p)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("bad regular expression '{pattern}': {e}"))
}

fn binop(t: &Tok) -> Option<(BinOp, u8)> {
    // Precedence as PromQL: or < and/unless < comparisons < +,- < *,/,% < ^.
    Some(match t {
        Tok::Ident(s) if s == "or" => (BinOp::Or, 1),
        Tok::Ident(s) if s == "and" => (BinOp::And, 2),
        Tok::Ident(s) if s == "unless" => (BinOp::Unless, 2),
        Tok::EqEq => (BinOp::Eq, 3),
        Tok::NotEq => (BinOp::Ne, 3),
        Tok::Gt => (BinOp::Gt, 3),
        Tok::Ge => (BinOp::Ge, 3),
        Tok::Lt => (BinOp::Lt, 3),
        Tok::Le => (BinOp::Le, 3),
        Tok::Plus => (BinOp::Add, 4),
        Tok::Minus => (BinOp::Sub, 4),
        Tok::Star => (BinOp::Mul, 5),
        Tok::Slash => (BinOp::Div, 5),
        Tok::Percent => (BinOp::Mod, 5),
        Tok::Caret => (BinOp::Pow, 6),
        _ => return None,
    })
}

fn range_fn(name: &str) -> Option<RangeFn> {
    Some(match name {
        "count_over_time" => RangeFn::CountOverTime,
        "rate" => RangeFn::Rate,
        "bytes_over_time" => RangeFn::BytesOverTime,
        "bytes_rate" => RangeFn::BytesRate,
        "absent_over_time" => RangeFn::AbsentOverTime,
        _ => return None,
    })
}

fn agg_op(name: &str) -> Option<AggOp> {
    Some(match name {
        "sum" => AggOp::Sum,
        "avg" => AggOp::Avg,
        "min" => AggOp::Min,
        "max" => AggOp::Max,
        "count" => AggOp::Count,
        "stddev" => AggOp::Stddev,
        "stdvar" => AggOp::Stdvar,
        "topk" => AggOp::Topk,
        "bottomk" => AggOp::Bottomk,
        _ => return None,
    })
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.len, |t| t.at)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        self.pos += 1;
        t
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        match self.toks.get(self.pos) {
            Some(t) => Err(format!(
                "expected {what} at offset {}, found {}",
                t.at,
                describe(&t.tok)
            )),
            None => Err(format!("expected {what} at the end of the query")),
        }
    }

    fn expect(&mut self, t: Tok) -> Result<(), String> {
        if self.peek() == Some(&t) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(&format!("'{}'", symbol(&t)))
        }
    }

    fn is_ident(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s == word)
    }

    fn ident(&mut self, what: &str) -> Result<String, String> {
        match self.peek() {
            Some(Tok::Ident(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => self.err(what),
        }
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        match self.peek() {
            Some(Tok::Str(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => self.err(what),
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "the query nests deeper than {MAX_DEPTH} levels at offset {}",
                self.at()
            ));
        }
        Ok(())
    }

    /// An expression whose operators bind tighter than `min`.
    fn expr(&mut self, min: u8) -> Result<Expr, String> {
        self.enter()?;
        let mut lhs = self.unary()?;
        while let Some((op, prec)) = self.peek().and_then(binop) {
            if prec <= min {
                break;
            }
            self.pos += 1;
            let mut bool_mod = false;
            if self.is_ident("bool") {
                if !op.is_comparison() {
                    return self.err("an operand ('bool' goes only after a comparison)");
                }
                bool_mod = true;
                self.pos += 1;
            }
            if self.is_ident("on") || self.is_ident("ignoring") {
                return Err(format!(
                    "vector matching with on()/ignoring() is not supported (offset {}); both sides must have the same labels",
                    self.at()
                ));
            }
            // `^` is right-associative: its right side may hold another `^`.
            let next_min = if op == BinOp::Pow { prec - 1 } else { prec };
            let rhs = self.expr(next_min)?;
            lhs = Expr::Binary(Box::new(Binary {
                op,
                bool_mod,
                lhs,
                rhs,
            }));
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.peek().cloned() {
            Some(Tok::Minus) => {
                self.pos += 1;
                let e = self.unary()?;
                Ok(Expr::Binary(Box::new(Binary {
                    op: BinOp::Mul,
                    bool_mod: false,
                    lhs: Expr::Number(-1.0),
                    rhs: e,
                })))
            }
            Some(Tok::Plus) => {
                self.pos += 1;
                self.unary()
            }
            Some(Tok::Number(n)) => {
                self.pos += 1;
                Ok(Expr::Number(n))
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let e = self.expr(0)?;
                self.expect(Tok::RParen)?;
                Ok(e)
            }
            Some(Tok::LBrace) => Ok(Expr::Log(self.log_expr()?)),
            Some(Tok::Ident(name)) => self.call(&name),
            _ => self.err("a stream selector, a number or a function"),
        }
    }

    fn call(&mut self, name: &str) -> Result<Expr, String> {
        let at = self.at();
        self.pos += 1;
        if name == "vector" {
            self.expect(Tok::LParen)?;
            let n = match self.next() {
                Some(Tok::Number(n)) => n,
                _ => {
                    self.pos -= 1;
                    return self.err("a number inside vector()");
                }
            };
            self.expect(Tok::RParen)?;
            return Ok(Expr::Vector(n));
        }
        if let Some(func) = range_fn(name) {
            self.expect(Tok::LParen)?;
            self.enter()?;
            let log = self.log_expr()?;
            if !matches!(self.peek(), Some(Tok::LBracket)) {
                return self.err(&format!("a range such as [5m] in {name}({{…}}[5m])"));
            }
            self.pos += 1;
            let range_ns = match self.next() {
                Some(Tok::Duration(d)) if d > 0 => d,
                _ => {
                    self.pos -= 1;
                    return self.err("a range such as [5m]");
                }
            };
            self.expect(Tok::RBracket)?;
            let mut offset_ns = 0;
            if self.is_ident("offset") {
                self.pos += 1;
                offset_ns = match self.next() {
                    Some(Tok::Duration(d)) => d,
                    _ => {
                        self.pos -= 1;
                        return self.err("a duration after offset");
                    }
                };
            }
            self.expect(Tok::RParen)?;
            self.depth -= 1;
            return Ok(Expr::Range(RangeAgg {
                func,
                log,
                range_ns,
                offset_ns,
            }));
        }
        if let Some(op) = agg_op(name) {
            self.enter()?;
            let mut grouping = self.grouping()?;
            self.expect(Tok::LParen)?;
            let mut param = None;
            if matches!(op, AggOp::Topk | AggOp::Bottomk) {
                match self.next() {
                    Some(Tok::Number(k)) if k >= 1.0 && k.fract() == 0.0 => param = Some(k),
                    _ => {
                        self.pos -= 1;
                        return self.err(&format!("a whole number k ≥ 1 first in {name}(k, …)"));
                    }
                }
                self.expect(Tok::Comma)?;
            }
            let inner = self.expr(0)?;
            self.expect(Tok::RParen)?;
            if grouping.is_none() {
                grouping = self.grouping()?;
            }
            if !inner.is_metric() {
                return Err(format!(
                    "{name}() at offset {at} needs a metric query inside, such as count_over_time({{…}}[5m]), not log lines"
                ));
            }
            self.depth -= 1;
            return Ok(Expr::Agg(Box::new(VectorAgg {
                op,
                grouping,
                param,
                inner,
            })));
        }
        match name {
            "sum_over_time" | "avg_over_time" | "max_over_time" | "min_over_time"
            | "first_over_time" | "last_over_time" | "stdvar_over_time" | "stddev_over_time"
            | "quantile_over_time" => Err(format!(
                "{name}() at offset {at} needs `| unwrap`, which Skein does not support yet; count_over_time, rate, bytes_over_time and bytes_rate are supported"
            )),
            _ => Err(format!(
                "unknown function or keyword '{name}' at offset {at}"
            )),
        }
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, String> {
        let without = if self.is_ident("by") {
            false
        } else if self.is_ident("without") {
            true
        } else {
            return Ok(None);
        };
        self.pos += 1;
        self.expect(Tok::LParen)?;
        let mut labels = Vec::new();
        while !matches!(self.peek(), Some(Tok::RParen)) {
            labels.push(self.ident("a label name")?);
            if matches!(self.peek(), Some(Tok::Comma)) {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.expect(Tok::RParen)?;
        Ok(Some(Grouping { without, labels }))
    }

    fn log_expr(&mut self) -> Result<LogExpr, String> {
        self.expect(Tok::LBrace)?;
        let mut matchers = Vec::new();
        while !matches!(self.peek(), Some(Tok::RBrace)) {
            let name = self.ident("a label name")?;
            let op = match self.next() {
                Some(Tok::Eq) => MatchOp::Eq,
                Some(Tok::NotEq) => MatchOp::Ne,
                Some(Tok::EqTilde) => MatchOp::Re,
                Some(Tok::NotTilde) => MatchOp::Nre,
                _ => {
                    self.pos -= 1;
                    return self.err("=, !=, =~ or !~");
                }
            };
            let value = self.string("a quoted value")?;
            let re = match op {
                MatchOp::Re | MatchOp::Nre => Some(compile(&value, true)?),
                _ => None,
            };
            matchers.push(Matcher {
                name,
                op,
                value,
                re,
            });
            if matches!(self.peek(), Some(Tok::Comma)) {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.expect(Tok::RBrace)?;
        if !matchers.iter().any(|m| !m.matches(Some(""))) {
            return Err(
                "the stream selector needs at least one matcher that does not match empty values, such as {service=\"checkout\"}"
                    .into(),
            );
        }
        let mut stages = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::PipeEq | Tok::NotEq | Tok::PipeTilde | Tok::NotTilde) => {
                    stages.push(self.line_filter()?)
                }
                Some(Tok::Pipe) => {
                    self.pos += 1;
                    stages.push(self.stage()?);
                }
                _ => break,
            }
        }
        Ok(LogExpr { matchers, stages })
    }

    fn line_filter(&mut self) -> Result<Stage, String> {
        let op = match self.next() {
            Some(Tok::PipeEq) => LineOp::Contains,
            Some(Tok::NotEq) => LineOp::NotContains,
            Some(Tok::PipeTilde) => LineOp::Matches,
            _ => LineOp::NotMatches,
        };
        let mut values = Vec::new();
        loop {
            let text = self.string("a quoted line filter")?;
            let re = match op {
                LineOp::Matches | LineOp::NotMatches => Some(compile(&text, false)?),
                _ => None,
            };
            values.push(LineValue { text, re });
            if self.is_ident("or")
                && matches!(
                    self.toks.get(self.pos + 1).map(|t| &t.tok),
                    Some(Tok::Str(_))
                )
            {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(Stage::Line { op, values })
    }

    fn stage(&mut self) -> Result<Stage, String> {
        let at = self.at();
        let name = match self.peek() {
            Some(Tok::Ident(s)) => s.clone(),
            _ => {
                return self
                    .err("a stage (json, logfmt, line_format, drop, keep or a label filter)");
            }
        };
        let next_is_op = matches!(
            self.toks.get(self.pos + 1).map(|t| &t.tok),
            Some(
                Tok::Eq
                    | Tok::EqEq
                    | Tok::NotEq
                    | Tok::EqTilde
                    | Tok::NotTilde
                    | Tok::Gt
                    | Tok::Ge
                    | Tok::Lt
                    | Tok::Le
            )
        );
        if next_is_op {
            return Ok(Stage::Filter(self.label_filter_or()?));
        }
        self.pos += 1;
        match name.as_str() {
            "json" => {
                let mut fields = Vec::new();
                while matches!(self.peek(), Some(Tok::Ident(_)))
                    && matches!(self.toks.get(self.pos + 1).map(|t| &t.tok), Some(Tok::Eq))
                {
                    let label = self.ident("a label name")?;
                    self.expect(Tok::Eq)?;
                    let path = self.string("a quoted JSON path")?;
                    fields.push((label, path));
                    if matches!(self.peek(), Some(Tok::Comma)) {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                Ok(Stage::Json(fields))
            }
            "logfmt" => {
                // Flags (--strict, --keep-empty) are not supported; plain logfmt is.
                Ok(Stage::Logfmt)
            }
            "line_format" => {
                let t = self.string("a quoted template after line_format")?;
                Ok(Stage::LineFormat(parse_template(&t)?))
            }
            "decolorize" => Ok(Stage::Decolorize),
            "drop" | "keep" => {
                let mut items = Vec::new();
                loop {
                    let label = self.ident("a label name")?;
                    let value = if matches!(self.peek(), Some(Tok::Eq)) {
                        self.pos += 1;
                        Some(self.string("a quoted value")?)
                    } else {
                        None
                    };
                    items.push((label, value));
                    if matches!(self.peek(), Some(Tok::Comma)) {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                if name == "drop" {
                    Ok(Stage::Drop(items))
                } else {
                    Ok(Stage::Keep(items.into_iter().map(|(l, _)| l).collect()))
                }
            }
            "unwrap" => Err(format!(
                "`| unwrap` at offset {at} is not supported yet; count_over_time, rate, bytes_over_time and bytes_rate are"
            )),
            "pattern" | "regexp" | "unpack" | "label_format" => Err(format!(
                "the `{name}` stage at offset {at} is not supported yet; json, logfmt, line_format, drop, keep, decolorize and label filters are"
            )),
            other => Err(format!("unknown stage '{other}' at offset {at}")),
        }
    }

    fn label_filter_or(&mut self) -> Result<LabelFilter, String> {
        let mut lhs = self.label_filter_and()?;
        while self.is_ident("or") {
            self.pos += 1;
            let rhs = self.label_filter_and()?;
            lhs = LabelFilter::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_and(&mut self) -> Result<LabelFilter, String> {
        let mut lhs = self.label_filter_one()?;
        loop {
            if self.is_ident("and") || matches!(self.peek(), Some(Tok::Comma)) {
                self.pos += 1;
            } else if !matches!(self.peek(), Some(Tok::Ident(s)) if s != "or")
                || !matches!(
                    self.toks.get(self.pos + 1).map(|t| &t.tok),
                    Some(
                        Tok::Eq
                            | Tok::EqEq
                            | Tok::NotEq
                            | Tok::EqTilde
                            | Tok::NotTilde
                            | Tok::Gt
                            | Tok::Ge
                            | Tok::Lt
                            | Tok::Le
                    )
                )
            {
                break;
            }
            let rhs = self.label_filter_one()?;
            lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_one(&mut self) -> Result<LabelFilter, String> {
        if matches!(self.peek(), Some(Tok::LParen)) {
            self.enter()?;
            self.pos += 1;
            let f = self.label_filter_or()?;
            self.expect(Tok::RParen)?;
            self.depth -= 1;
            return Ok(f);
        }
        let name = self.ident("a label name")?;
        let op = match self.next() {
            Some(Tok::Eq | Tok::EqEq) => CmpOp::Eq,
            Some(Tok::NotEq) => CmpOp::Ne,
            Some(Tok::EqTilde) => CmpOp::Re,
            Some(Tok::NotTilde) => CmpOp::Nre,
            Some(Tok::Gt) => CmpOp::Gt,
            Some(Tok::Ge) => CmpOp::Ge,
            Some(Tok::Lt) => CmpOp::Lt,
            Some(Tok::Le) => CmpOp::Le,
            _ => {
                self.pos -= 1;
                return self.err("a comparison (=, !=, =~, !~, >, >=, <, <=)");
            }
        };
        let value = match self.next() {
            Some(Tok::Str(s)) => {
                let re = match op {
                    CmpOp::Re | CmpOp::Nre => Some(compile(&s, true)?),
                    CmpOp::Eq | CmpOp::Ne => None,
                    _ => {
                        self.pos -= 1;
                        return self.err("a number or a duration after a numeric comparison");
                    }
                };
                FilterValue::Text(s, re)
            }
            Some(Tok::Number(n)) if !matches!(op, CmpOp::Re | CmpOp::Nre) => FilterValue::Number(n),
            Some(Tok::Duration(d)) if !matches!(op, CmpOp::Re | CmpOp::Nre) => {
                FilterValue::Duration(d as f64 / 1e9)
            }
            _ => {
                self.pos -= 1;
                return self.err("a quoted value, a number or a duration");
            }
        };
        Ok(LabelFilter::Cmp { name, op, value })
    }
}

/// Parses a `line_format` template: text with `{{.label}}` and `{{__line__}}`. Functions and
/// pipelines inside `{{ }}` are refused with a message saying what is supported.
pub fn parse_template(t: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(TemplatePart::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or("line_format: a '{{' is never closed by '}}'")?;
        let inner = after[..close]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        if inner == "__line__" {
            parts.push(TemplatePart::Line);
        } else if let Some(name) = inner
            .strip_prefix('.')
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            parts.push(TemplatePart::Label(name.to_string()));
        } else {
            return Err(format!(
                "line_format: '{{{{{inner}}}}}' is not supported; use {{{{.label}}}} or {{{{__line__}}}}"
            ));
        }
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest.to_string()));
    }
    Ok(parts)
}
