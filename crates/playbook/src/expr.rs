//! The tiny expression language of playbooks: `${{ ... }}` templates in strings and the
//! boolean `when:` conditions. References, literals, comparisons and `&& || !` — no
//! loops, no calls, nothing that can run code.
use std::fmt;

use rust_decimal::Decimal;

/// Something a template or condition can name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reference {
    /// `inputs.NAME`
    Input(String),
    /// `key.masked`: the leaked key as `AbCd…wXyZ`.
    KeyMasked,
    /// `steps.ID.outputs.NAME`
    StepOutput { step: String, name: String },
    /// `steps.ID.confirmed`: the operator said yes/done (or --yes did).
    StepConfirmed(String),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Input(name) => write!(f, "inputs.{name}"),
            Reference::KeyMasked => f.write_str("key.masked"),
            Reference::StepOutput { step, name } => write!(f, "steps.{step}.outputs.{name}"),
            Reference::StepConfirmed(step) => write!(f, "steps.{step}.confirmed"),
        }
    }
}

/// A runtime value. Numbers are decimals so amounts compare exactly.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Num(Decimal),
    Str(String),
}

impl Val {
    pub fn truthy(&self) -> bool {
        match self {
            Val::Null => false,
            Val::Bool(b) => *b,
            Val::Num(n) => !n.is_zero(),
            Val::Str(s) => !s.is_empty() && s != "false",
        }
    }

    fn as_number(&self) -> Option<Decimal> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Str(s) => s.trim().parse().ok(),
            Val::Bool(_) | Val::Null => None,
        }
    }

    /// Convert a JSON value (step outputs are JSON) into a `Val`.
    pub fn from_json(value: &serde_json::Value) -> Val {
        match value {
            serde_json::Value::Null => Val::Null,
            serde_json::Value::Bool(b) => Val::Bool(*b),
            serde_json::Value::Number(n) => n
                .to_string()
                .parse()
                .map(Val::Num)
                .unwrap_or_else(|_| Val::Str(n.to_string())),
            serde_json::Value::String(s) => Val::Str(s.clone()),
            other => Val::Str(other.to_string()),
        }
    }
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Null => Ok(()),
            Val::Bool(b) => write!(f, "{b}"),
            Val::Num(n) => write!(f, "{}", n.normalize()),
            Val::Str(s) => f.write_str(s),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Lit(Val),
    Ref(Reference),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
}

/// A parse problem, with the character offset in the parsed text where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
}

impl Expr {
    /// Every reference in the expression, in order.
    pub fn references(&self) -> Vec<&Reference> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Reference>) {
        match self {
            Expr::Lit(_) => {}
            Expr::Ref(r) => out.push(r),
            Expr::Not(e) => e.collect(out),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Cmp(_, a, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }

    /// Evaluate with `lookup` resolving references (missing ones are `Null`).
    pub fn eval(&self, lookup: &dyn Fn(&Reference) -> Val) -> Val {
        match self {
            Expr::Lit(v) => v.clone(),
            Expr::Ref(r) => lookup(r),
            Expr::Not(e) => Val::Bool(!e.eval(lookup).truthy()),
            Expr::And(a, b) => Val::Bool(a.eval(lookup).truthy() && b.eval(lookup).truthy()),
            Expr::Or(a, b) => Val::Bool(a.eval(lookup).truthy() || b.eval(lookup).truthy()),
            Expr::Cmp(op, a, b) => Val::Bool(compare(*op, &a.eval(lookup), &b.eval(lookup))),
        }
    }
}

fn compare(op: CmpOp, a: &Val, b: &Val) -> bool {
    if let (Some(x), Some(y)) = (a.as_number(), b.as_number()) {
        return match op {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            CmpOp::Gt => x > y,
            CmpOp::Lt => x < y,
            CmpOp::Ge => x >= y,
            CmpOp::Le => x <= y,
        };
    }
    let equal = match (a, b) {
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Bool(x), other) | (other, Val::Bool(x)) => *x == other.truthy(),
        _ => a.to_string() == b.to_string(),
    };
    match op {
        CmpOp::Eq => equal,
        CmpOp::Ne => !equal,
        // Ordering is only defined on numbers; anything else compares false.
        _ => false,
    }
}

/// One piece of a template string.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Text(String),
    /// An expression inside `${{ }}`, with the character offset of its `${{`.
    Expr(Expr, usize),
}

/// A string that may contain `${{ ... }}` expressions.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub parts: Vec<Part>,
}

impl Template {
    pub fn literal(text: &str) -> Template {
        Template {
            parts: vec![Part::Text(text.to_string())],
        }
    }

    /// The text, when the template is plain text with nothing to fill in.
    pub fn as_literal(&self) -> Option<String> {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Split text into literal parts and `${{ expr }}` parts; every error is reported with
    /// its character offset in `text`.
    pub fn parse(text: &str) -> Result<Template, Vec<ExprError>> {
        let mut parts = Vec::new();
        let mut errors = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(start) = rest.find("${{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let open = offset + char_count(&rest[..start]);
            let after = &rest[start + 3..];
            let Some(end) = after.find("}}") else {
                errors.push(ExprError {
                    offset: open,
                    message: "`${{` is never closed with `}}`".into(),
                });
                return Err(errors);
            };
            match parse_expr(&after[..end]) {
                Ok(expr) => parts.push(Part::Expr(expr, open)),
                Err(e) => errors.push(ExprError {
                    offset: open + 3 + e.offset,
                    message: e.message,
                }),
            }
            offset = open + 3 + char_count(&after[..end]) + 2;
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        if errors.is_empty() {
            Ok(Template { parts })
        } else {
            Err(errors)
        }
    }

    pub fn references(&self) -> Vec<(&Reference, usize)> {
        let mut out = Vec::new();
        for part in &self.parts {
            if let Part::Expr(e, offset) = part {
                out.extend(e.references().into_iter().map(|r| (r, *offset)));
            }
        }
        out
    }

    pub fn render(&self, lookup: &dyn Fn(&Reference) -> Val) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Expr(e, _) => out.push_str(&e.eval(lookup).to_string()),
            }
        }
        out
    }

    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }
}

fn char_count(s: &str) -> usize {
    s.chars().count()
}

/// Parse a `when:` condition: either `${{ expr }}` or a bare expression.
pub fn parse_condition(text: &str) -> Result<Expr, ExprError> {
    let trimmed = text.trim();
    if let Some(inner) = trimmed.strip_prefix("${{") {
        let lead = char_count(&text[..text.len() - text.trim_start().len()]) + 3;
        let not_one = |offset| ExprError {
            offset,
            message: "a `when:` condition must be one `${{ ... }}` expression".into(),
        };
        let Some(inner) = inner.strip_suffix("}}") else {
            return Err(not_one(lead - 3));
        };
        if let Some(at) = inner.find("}}") {
            // `${{ a }} and ${{ b }}`: two expressions, not one.
            return Err(not_one(lead + char_count(&inner[..at])));
        }
        return parse_expr(inner).map_err(|e| ExprError {
            offset: lead + e.offset,
            ..e
        });
    }
    parse_expr(text)
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Num(Decimal),
    Str(String),
    Op(&'static str),
    LParen,
    RParen,
}

fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        if let Some(op) = ["==", "!=", ">=", "<=", "&&", "||"]
            .into_iter()
            .find(|op| *op == two)
        {
            out.push((Tok::Op(op), start));
            i += 2;
            continue;
        }
        match c {
            '>' => out.push((Tok::Op(">"), start)),
            '<' => out.push((Tok::Op("<"), start)),
            '!' => out.push((Tok::Op("!"), start)),
            '(' => out.push((Tok::LParen, start)),
            ')' => out.push((Tok::RParen, start)),
            '\'' | '"' => {
                let quote = c;
                i += 1;
                let mut s = String::new();
                while i < chars.len() && chars[i] != quote {
                    s.push(chars[i]);
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(ExprError { offset: start, message: "unterminated string".into() });
                }
                out.push((Tok::Str(s), start));
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n = text.parse().map_err(|_| ExprError {
                    offset: start,
                    message: format!("`{text}` is not a number"),
                })?;
                out.push((Tok::Num(n), start));
                continue;
            }
            c if c.is_alphanumeric() || c == '_' => {
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.'))
                {
                    i += 1;
                }
                out.push((Tok::Ident(chars[start..i].iter().collect()), start));
                continue;
            }
            other => {
                return Err(ExprError {
                    offset: start,
                    message: format!("unexpected `{other}` (allowed: references, literals, == != > < >= <= && || ! and parentheses)"),
                })
            }
        }
        i += 1;
    }
    Ok(out)
}

/// Most tokens in one expression. The language is for short conditions; a bound keeps
/// the tree (evaluated and dropped recursively) shallow whatever a file holds.
pub const MAX_TOKENS: usize = 256;

/// Most `(` and `!` nested inside each other. The parser is recursive descent: without a
/// bound, `((((…` in a playbook overflows the stack and aborts the process.
pub const MAX_DEPTH: usize = 32;

/// Parse one expression (the text between `${{` and `}}`).
pub fn parse_expr(text: &str) -> Result<Expr, ExprError> {
    let tokens = tokenize(text)?;
    let end = char_count(text);
    if tokens.is_empty() {
        return Err(ExprError {
            offset: 0,
            message: "empty expression".into(),
        });
    }
    if let Some((_, offset)) = tokens.get(MAX_TOKENS) {
        return Err(ExprError {
            offset: *offset,
            message: format!("expression too long: more than {MAX_TOKENS} tokens"),
        });
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        end,
        depth: 0,
    };
    let expr = parser.or()?;
    if let Some((tok, offset)) = parser.tokens.get(parser.at) {
        return Err(ExprError {
            offset: *offset,
            message: format!("unexpected {}", describe(tok)),
        });
    }
    Ok(expr)
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Num(n) => format!("number `{n}`"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Op(op) => format!("`{op}`"),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
    }
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    at: usize,
    end: usize,
    /// `(` and `!` currently open.
    depth: usize,
}

impl Parser {
    fn deeper(&mut self, offset: usize) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError {
                offset,
                message: format!(
                    "expression nested too deeply: more than {MAX_DEPTH} levels of `(` and `!`"
                ),
            });
        }
        Ok(())
    }

    fn peek_op(&self, op: &str) -> bool {
        matches!(self.tokens.get(self.at), Some((Tok::Op(o), _)) if *o == op)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.at).map(|t| t.1).unwrap_or(self.end)
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.and()?;
        while self.peek_op("||") {
            self.at += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        while self.peek_op("&&") {
            self.at += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.peek_op("!") {
            self.deeper(self.offset())?;
            self.at += 1;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        let left = self.primary()?;
        let op = match self.tokens.get(self.at) {
            Some((Tok::Op("=="), _)) => CmpOp::Eq,
            Some((Tok::Op("!="), _)) => CmpOp::Ne,
            Some((Tok::Op(">"), _)) => CmpOp::Gt,
            Some((Tok::Op("<"), _)) => CmpOp::Lt,
            Some((Tok::Op(">="), _)) => CmpOp::Ge,
            Some((Tok::Op("<="), _)) => CmpOp::Le,
            _ => return Ok(left),
        };
        self.at += 1;
        let right = self.primary()?;
        Ok(Expr::Cmp(op, Box::new(left), Box::new(right)))
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let offset = self.offset();
        let Some((tok, _)) = self.tokens.get(self.at).cloned() else {
            return Err(ExprError {
                offset,
                message: "expected a value at the end".into(),
            });
        };
        self.at += 1;
        match tok {
            Tok::LParen => {
                self.deeper(offset)?;
                let inner = self.or()?;
                self.depth -= 1;
                match self.tokens.get(self.at) {
                    Some((Tok::RParen, _)) => {
                        self.at += 1;
                        Ok(inner)
                    }
                    _ => Err(ExprError {
                        offset: self.offset(),
                        message: "missing `)`".into(),
                    }),
                }
            }
            Tok::Num(n) => Ok(Expr::Lit(Val::Num(n))),
            Tok::Str(s) => Ok(Expr::Lit(Val::Str(s))),
            Tok::Ident(name) => match name.as_str() {
                "true" => Ok(Expr::Lit(Val::Bool(true))),
                "false" => Ok(Expr::Lit(Val::Bool(false))),
                "null" => Ok(Expr::Lit(Val::Null)),
                _ => parse_reference(&name)
                    .map(Expr::Ref)
                    .map_err(|message| ExprError { offset, message }),
            },
            other => Err(ExprError {
                offset,
                message: format!("expected a value, found {}", describe(&other)),
            }),
        }
    }
}

fn parse_reference(name: &str) -> Result<Reference, String> {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        ["inputs", input] if !input.is_empty() => Ok(Reference::Input(input.to_string())),
        ["key", "masked"] => Ok(Reference::KeyMasked),
        ["steps", step, "outputs", out] if !step.is_empty() && !out.is_empty() => {
            Ok(Reference::StepOutput { step: step.to_string(), name: out.to_string() })
        }
        ["steps", step, "confirmed"] if !step.is_empty() => Ok(Reference::StepConfirmed(step.to_string())),
        _ => Err(format!(
            "unknown name `{name}` (use inputs.NAME, key.masked, steps.ID.outputs.NAME or steps.ID.confirmed)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str) -> bool {
        let expr = parse_condition(text).unwrap();
        expr.eval(&|r| match r {
            Reference::Input(n) if n == "since" => Val::Str("72h".into()),
            Reference::StepOutput { name, .. } if name == "open" => Val::Num(3.into()),
            Reference::StepConfirmed(s) => Val::Bool(s == "delete-key"),
            _ => Val::Null,
        })
        .truthy()
    }

    #[test]
    fn conditions() {
        assert!(eval("${{ steps.delete-key.confirmed }}"));
        assert!(!eval("${{ !steps.delete-key.confirmed }}"));
        assert!(eval("steps.x.outputs.open > 2 && inputs.since == '72h'"));
        assert!(!eval("steps.x.outputs.open < 2"));
        assert!(eval("steps.x.outputs.open >= 3 || false"));
        assert!(eval("!(steps.other.confirmed) && true"));
        assert!(eval("steps.x.outputs.missing == null"));
        assert!(eval("1 != 2"));
    }

    #[test]
    fn condition_errors_point_at_the_problem() {
        let e = parse_condition("${{ steps.a.confirmed && }}").unwrap_err();
        assert_eq!(e.message, "expected a value at the end");
        let e = parse_condition("steps.a.nope").unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.message.contains("unknown name"));
        let e = parse_condition("a == 'x").unwrap_err();
        assert!(e.message.contains("unterminated"));
        let e = parse_condition("${{ inputs.x }} extra").unwrap_err();
        assert!(e.message.contains("one `${{"), "{}", e.message);
        let e = parse_condition("inputs.a $ 2").unwrap_err();
        assert_eq!(e.offset, 9);
    }

    #[test]
    fn templates() {
        let t = Template::parse("Delete ${{ key.masked }} now (${{ inputs.since }}).").unwrap();
        let out = t.render(&|r| match r {
            Reference::KeyMasked => Val::Str("AbCd…wXyZ".into()),
            Reference::Input(_) => Val::Str("72h".into()),
            _ => Val::Null,
        });
        assert_eq!(out, "Delete AbCd…wXyZ now (72h).");
        assert_eq!(t.references().len(), 2);
        assert_eq!(t.references()[0].1, 7);
        let errs = Template::parse("a ${{ inputs. }} b ${{ 1 +").unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(Template::parse("plain").unwrap().is_literal());
    }
}
