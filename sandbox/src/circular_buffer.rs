//! The `circular_buffer` module (reference §5.7): a time-series window of `rows × columns`
//! doubles, one row per `seconds_per_row`, with cbuf/cbufd text output.
//!
//! Row `r` holds the time slot `t / seconds_per_row`, where `r = slot % rows`; advancing past the
//! newest row clears (sets to NaN) the rows skipped over, so the buffer always covers the
//! `rows` slots ending at [`CircularBuffer::current_time`].

use std::collections::BTreeMap;
use std::rc::Rc;

use mlua::{AnyUserData, Lua, Table, UserData, UserDataMethods, Value, Variadic};

use crate::lua_util::{
    arg_error, check_integer, check_number, check_option, check_string, loc, opt_number, rt,
};
use crate::memory::MemoryAccount;
use crate::number::{format_g, write_number};

/// How a column aggregates values set into the same cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    /// `sum` (the default): `add` accumulates, `set` overwrites.
    Sum,
    /// `min`: `set` keeps the smaller value.
    Min,
    /// `max`: `set` keeps the larger value.
    Max,
    /// `none`: `set` overwrites.
    None,
}

impl Aggregation {
    fn name(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::None => "none",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sum" => Aggregation::Sum,
            "min" => Aggregation::Min,
            "max" => Aggregation::Max,
            "none" => Aggregation::None,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Header {
    name: String,
    unit: String,
    aggregation: Aggregation,
}

/// Output format selected with `cb:format()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The whole buffer.
    Cbuf,
    /// Only the rows changed since the last output.
    Cbufd,
}

/// A circular buffer, as Lua userdata.
#[derive(Debug)]
pub struct CircularBuffer {
    /// Start (seconds) of the newest row.
    current_time: i64,
    seconds_per_row: i64,
    current_row: usize,
    rows: usize,
    columns: usize,
    values: Vec<f64>,
    headers: Vec<Header>,
    format: Format,
    /// Row start (seconds) → per-column change since the last cbufd output.
    delta: Option<BTreeMap<i64, Vec<f64>>>,
    account: Option<Rc<MemoryAccount>>,
    accounted: usize,
}

impl Drop for CircularBuffer {
    fn drop(&mut self) {
        if let Some(a) = &self.account {
            a.release(self.accounted);
        }
    }
}

const MAX_CELLS: usize = 1 << 28;

impl CircularBuffer {
    /// A buffer of `rows × columns` NaN cells covering the slots up to `(rows - 1) ×
    /// seconds_per_row`.
    pub fn new(rows: usize, columns: usize, seconds_per_row: i64, enable_delta: bool) -> Self {
        CircularBuffer {
            current_time: seconds_per_row * (rows as i64 - 1),
            seconds_per_row,
            current_row: rows - 1,
            rows,
            columns,
            values: vec![f64::NAN; rows * columns],
            headers: (1..=columns)
                .map(|c| Header {
                    name: format!("Column_{c}"),
                    unit: "count".into(),
                    aggregation: Aggregation::Sum,
                })
                .collect(),
            format: Format::Cbuf,
            delta: enable_delta.then(BTreeMap::new),
            account: None,
            accounted: 0,
        }
    }

    /// Bytes held for `rows × columns` cells (twice that with delta tracking).
    fn footprint(rows: usize, columns: usize, delta: bool) -> usize {
        let cells = rows * columns * 8;
        if delta { cells * 2 } else { cells }
    }

    /// Start (seconds) of the oldest row.
    fn start_time(&self) -> i64 {
        self.current_time
            .saturating_sub(self.seconds_per_row * (self.rows as i64 - 1))
    }

    /// The time of the newest row in nanoseconds.
    pub fn current_time_ns(&self) -> f64 {
        self.current_time as f64 * 1e9
    }

    /// The row holding time `ns`, advancing the window when `advance` and `ns` is newer than
    /// the newest row; `None` when `ns` lies outside the window.
    fn row_for(&mut self, ns: f64, advance: bool) -> Option<usize> {
        if !ns.is_finite() || ns < 0.0 {
            return None;
        }
        let t = (ns / 1e9) as i64;
        let t = t - t % self.seconds_per_row;
        let current_slot = self.current_time / self.seconds_per_row;
        let requested_slot = t / self.seconds_per_row;
        let row_delta = requested_slot.saturating_sub(current_slot);
        let row = (requested_slot % self.rows as i64) as usize;
        if row_delta > 0 && advance {
            self.clear_rows(row_delta);
            self.current_time = t;
            self.current_row = row;
            if let Some(d) = &mut self.delta {
                let oldest = t - self.seconds_per_row * (self.rows as i64 - 1);
                d.retain(|&k, _| k >= oldest);
            }
        } else if row_delta > 0 || row_delta.unsigned_abs() >= self.rows as u64 {
            return None;
        }
        Some(row)
    }

    fn row_start_time(&self, row: usize) -> i64 {
        let back = (self.current_row + self.rows - row) % self.rows;
        self.current_time
            .saturating_sub(back as i64 * self.seconds_per_row)
    }

    fn clear_rows(&mut self, n: i64) {
        let n = (n.max(0) as u64).min(self.rows as u64) as usize;
        let mut row = (self.current_row + 1) % self.rows;
        for _ in 0..n {
            let start = row * self.columns;
            self.values[start..start + self.columns].fill(f64::NAN);
            row = (row + 1) % self.rows;
        }
    }

    fn record_delta(&mut self, row: usize, col: usize, old: f64, new: f64, added: Option<f64>) {
        let time = self.row_start_time(row);
        let columns = self.columns;
        let agg = self.headers[col].aggregation;
        let Some(d) = &mut self.delta else { return };
        let cells = d.entry(time).or_insert_with(|| vec![f64::NAN; columns]);
        let cell = &mut cells[col];
        match (agg, added) {
            (Aggregation::Sum, Some(v)) => *cell = if cell.is_nan() { v } else { *cell + v },
            (Aggregation::Sum, None) => {
                let change = new - if old.is_nan() { 0.0 } else { old };
                *cell = if cell.is_nan() {
                    change
                } else {
                    *cell + change
                };
            }
            _ => *cell = new,
        }
    }

    /// `add`: adds `value` to the cell; the new value, or `None` when `ns` is outside the window.
    pub fn add(&mut self, ns: f64, col: usize, value: f64) -> Option<f64> {
        let row = self.row_for(ns, true)?;
        let i = row * self.columns + col;
        let old = self.values[i];
        let new = if old.is_nan() { value } else { old + value };
        self.values[i] = new;
        self.record_delta(row, col, old, new, Some(value));
        Some(new)
    }

    /// `set`: overwrites the cell (min/max columns keep the smaller/larger value).
    pub fn set(&mut self, ns: f64, col: usize, value: f64) -> Option<f64> {
        let row = self.row_for(ns, true)?;
        let i = row * self.columns + col;
        let old = self.values[i];
        let new = match self.headers[col].aggregation {
            Aggregation::Min
                if !old.is_nan() && value.partial_cmp(&old) != Some(std::cmp::Ordering::Less) =>
            {
                old
            }
            Aggregation::Max
                if !old.is_nan()
                    && value.partial_cmp(&old) != Some(std::cmp::Ordering::Greater) =>
            {
                old
            }
            _ => value,
        };
        self.values[i] = new;
        if new.to_bits() != old.to_bits() {
            self.record_delta(row, col, old, new, None);
        }
        Some(new)
    }

    /// `get`: the cell's value, or `None` when `ns` is outside the window.
    pub fn get(&mut self, ns: f64, col: usize) -> Option<f64> {
        let row = self.row_for(ns, false)?;
        Some(self.values[row * self.columns + col])
    }

    /// Values of column `col` from `start_ns` to `end_ns` (inclusive), oldest first.
    fn range(&mut self, col: usize, start_ns: f64, end_ns: f64) -> Option<Vec<f64>> {
        let start = self.row_for(start_ns, false)?;
        let end = self.row_for(end_ns, false)?;
        let mut out = Vec::new();
        let mut row = start;
        loop {
            out.push(self.values[row * self.columns + col]);
            if row == end {
                return Some(out);
            }
            row = (row + 1) % self.rows;
        }
    }

    /// Writes the buffer in its selected format; cbufd output clears the recorded changes.
    pub fn write_output(&mut self, out: &mut Vec<u8>) {
        match self.format {
            Format::Cbuf => {
                self.write_header(out);
                let mut row = self.current_row;
                for _ in 0..self.rows {
                    row = (row + 1) % self.rows;
                    let cells = &self.values[row * self.columns..(row + 1) * self.columns];
                    write_cells(out, cells);
                }
            }
            Format::Cbufd => {
                let Some(delta) = self.delta.take() else {
                    return;
                };
                if !delta.is_empty() {
                    self.write_header(out);
                    for (time, cells) in &delta {
                        out.extend_from_slice(time.to_string().as_bytes());
                        out.push(b'\t');
                        write_cells(out, cells);
                    }
                }
                self.delta = Some(BTreeMap::new());
            }
        }
    }

    fn write_header(&self, out: &mut Vec<u8>) {
        let mut s = format!(
            "{{\"time\":{},\"rows\":{},\"columns\":{},\"seconds_per_row\":{},\"column_info\":[",
            self.start_time(),
            self.rows,
            self.columns,
            self.seconds_per_row
        );
        for (i, h) in self.headers.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                "{{\"name\":\"{}\",\"unit\":\"{}\",\"aggregation\":\"{}\"}}",
                h.name,
                h.unit,
                h.aggregation.name()
            ));
        }
        s.push_str("]}\n");
        out.extend_from_slice(s.as_bytes());
    }

    /// The state as `fromstring` reads it: newest-row time (s), newest row index, then every
    /// cell row-major (`%.17g`, `nan`).
    pub(crate) fn serialize_values(&self) -> String {
        let mut s = format!("{} {}", self.current_time, self.current_row);
        for v in &self.values {
            s.push(' ');
            if v.is_nan() {
                s.push_str("nan");
            } else {
                s.push_str(&format_g(*v, 17));
            }
        }
        s
    }

    fn restore_values(&mut self, text: &str) -> Result<(), &'static str> {
        let mut it = text.split_ascii_whitespace();
        let time: i64 = it
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|t| *t >= 0)
            .ok_or("fromstring() invalid time")?;
        let row: usize = it
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|r| *r < self.rows)
            .ok_or("fromstring() invalid row")?;
        let mut values = Vec::with_capacity(self.values.len());
        for s in it {
            if values.len() == self.values.len() {
                return Err("fromstring() too many values");
            }
            let v = match s {
                "nan" | "-nan" => f64::NAN,
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                _ => s.parse().map_err(|_| "fromstring() invalid value")?,
            };
            values.push(v);
        }
        if values.len() != self.values.len() {
            return Err("fromstring() too few values");
        }
        self.current_time = time;
        self.current_row = row;
        self.values = values;
        Ok(())
    }

    /// Lua statements re-creating this buffer as global expression `target` (preservation).
    pub(crate) fn serialize_lua(&self, target: &str, out: &mut String) {
        out.push_str(&format!(
            "{target} = require(\"circular_buffer\").new({}, {}, {}, {})\n",
            self.rows,
            self.columns,
            self.seconds_per_row,
            self.delta.is_some()
        ));
        for (i, h) in self.headers.iter().enumerate() {
            out.push_str(&format!(
                "{target}:set_header({}, \"{}\", \"{}\", \"{}\")\n",
                i + 1,
                h.name,
                h.unit,
                h.aggregation.name()
            ));
        }
        if self.format == Format::Cbufd {
            out.push_str(&format!("{target}:format(\"cbufd\")\n"));
        }
        out.push_str(&format!(
            "{target}:fromstring(\"{}\")\n",
            self.serialize_values()
        ));
    }

    fn check_column(&self, v: &Value, n: usize, fname: &str) -> mlua::Result<usize> {
        let c = check_integer(v, n, fname)?;
        if c < 1 || c as usize > self.columns {
            return Err(arg_error(n, fname, "column out of range"));
        }
        Ok(c as usize - 1)
    }

    fn range_args(&self, args: &[Value], first: usize, fname: &str) -> mlua::Result<(f64, f64)> {
        let none = Value::Nil;
        let a = args.get(first).unwrap_or(&none);
        let b = args.get(first + 1).unwrap_or(&none);
        let start = opt_number(a, first + 1, fname, self.start_time() as f64 * 1e9)?;
        let end = opt_number(b, first + 2, fname, self.current_time as f64 * 1e9)?;
        if end < start {
            return Err(arg_error(first + 2, fname, "end must be >= start"));
        }
        Ok((start, end))
    }
}

fn write_cells(out: &mut Vec<u8>, cells: &[f64]) {
    for (i, v) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        write_number(out, *v);
    }
    out.push(b'\n');
}

fn sanitize(s: &str, max: usize, keep: impl Fn(char) -> bool) -> String {
    s.chars()
        .take(max)
        .map(|c| if keep(c) { c } else { '_' })
        .collect()
}

fn opt_value(v: Option<f64>) -> Value {
    v.map_or(Value::Nil, Value::Number)
}

/// Population statistics of the non-NaN values: (result, count).
fn compute(func: &str, values: &[f64]) -> (f64, usize) {
    let nums: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    let n = nums.len();
    let sum: f64 = nums.iter().sum();
    let result = match func {
        "sum" => sum,
        "avg" => sum / n as f64,
        "variance" | "sd" => {
            let mean = sum / n as f64;
            let var = nums.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
            if func == "sd" { var.sqrt() } else { var }
        }
        "min" => nums.iter().copied().fold(f64::NAN, f64::min),
        "max" => nums.iter().copied().fold(f64::NAN, f64::max),
        _ => f64::NAN,
    };
    (result, n)
}

/// Mann-Whitney U test of two samples: (U, one-sided p), or `None` when every value ties or a
/// sample is empty.
fn mann_whitney_u(x: &[f64], y: &[f64], use_continuity: bool) -> Option<(f64, f64)> {
    let x: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    let y: Vec<f64> = y.iter().copied().filter(|v| !v.is_nan()).collect();
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|v| (*v, true))
        .chain(y.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let mut ranks = vec![0.0; n];
    let mut tie_sum = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for r in &mut ranks[i..=j] {
            *r = rank;
        }
        let t = (j - i + 1) as f64;
        tie_sum += t * t * t - t;
        i = j + 1;
    }
    let rank_x: f64 = all
        .iter()
        .zip(&ranks)
        .filter(|(v, _)| v.1)
        .map(|(_, r)| r)
        .sum();
    let nf = n as f64;
    let tie_correct = 1.0 - tie_sum / (nf * nf * nf - nf);
    if tie_correct == 0.0 {
        return None;
    }
    let u1 = n1 * n2 + n1 * (n1 + 1.0) / 2.0 - rank_x;
    let u2 = n1 * n2 - u1;
    let big_u = u1.max(u2);
    let small_u = u1.min(u2);
    let sd = (tie_correct * n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt();
    let mean = n1 * n2 / 2.0 + if use_continuity { 0.5 } else { 0.0 };
    let z = ((big_u - mean) / sd).abs();
    Some((small_u, 0.5 * erfc(z / std::f64::consts::SQRT_2)))
}

/// The complementary error function (Numerical Recipes' Chebyshev fit, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

fn arg(args: &[Value], i: usize) -> &Value {
    args.get(i).unwrap_or(&Value::Nil)
}

impl UserData for CircularBuffer {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // The per-message methods take their arguments as a tuple: no allocation per call.
        methods.add_method_mut("add", |lua, cb, (a0, a1, a2): (Value, Value, Value)| {
            loc(
                lua,
                (|| {
                    let a = &[a0, a1, a2];
                    let ns = check_number(arg(a, 0), 1, "add")?;
                    let col = cb.check_column(arg(a, 1), 2, "add")?;
                    let v = check_number(arg(a, 2), 3, "add")?;
                    Ok(opt_value(cb.add(ns, col, v)))
                })(),
            )
        });
        // The per-message methods take their arguments as a tuple: no allocation per call.
        methods.add_method_mut("set", |lua, cb, (a0, a1, a2): (Value, Value, Value)| {
            loc(
                lua,
                (|| {
                    let a = &[a0, a1, a2];
                    let ns = check_number(arg(a, 0), 1, "set")?;
                    let col = cb.check_column(arg(a, 1), 2, "set")?;
                    let v = check_number(arg(a, 2), 3, "set")?;
                    Ok(opt_value(cb.set(ns, col, v)))
                })(),
            )
        });
        methods.add_method_mut("get", |lua, cb, (a0, a1): (Value, Value)| {
            loc(
                lua,
                (|| {
                    let a = &[a0, a1];
                    let ns = check_number(arg(a, 0), 1, "get")?;
                    let col = cb.check_column(arg(a, 1), 2, "get")?;
                    Ok(opt_value(cb.get(ns, col)))
                })(),
            )
        });
        methods.add_method_mut("get_range", |lua, cb, args: Variadic<Value>| {
            loc(
                lua,
                (|| {
                    let a = args.as_slice();
                    let col = cb.check_column(arg(a, 0), 1, "get_range")?;
                    let (start, end) = cb.range_args(a, 1, "get_range")?;
                    match cb.range(col, start, end) {
                        Some(v) => Ok(Value::Table(lua.create_sequence_from(v)?)),
                        None => Ok(Value::Nil),
                    }
                })(),
            )
        });
        methods.add_method("get_configuration", |_, cb, ()| {
            Ok((cb.rows as f64, cb.columns as f64, cb.seconds_per_row as f64))
        });
        methods.add_method_mut("set_header", |lua, cb, args: Variadic<Value>| {
            loc(
                lua,
                (|| {
                    let a = args.as_slice();
                    let col = cb.check_column(arg(a, 0), 1, "set_header")?;
                    let name = check_string(arg(a, 1), 2, "set_header")?;
                    let unit = match arg(a, 2) {
                        Value::Nil => "count".to_owned(),
                        v => check_string(v, 3, "set_header")?,
                    };
                    let agg = check_option(
                        arg(a, 3),
                        4,
                        "set_header",
                        Some("sum"),
                        &["sum", "min", "max", "none"],
                    )?;
                    let h = &mut cb.headers[col];
                    h.name = sanitize(&name, 15, |c| c.is_ascii_alphanumeric());
                    h.unit = sanitize(&unit, 7, |c| {
                        c.is_ascii_alphanumeric() || c == '/' || c == '*'
                    });
                    h.aggregation = Aggregation::parse(agg).unwrap_or(Aggregation::Sum);
                    Ok((col + 1) as f64)
                })(),
            )
        });
        methods.add_method("get_header", |lua, cb, args: Variadic<Value>| {
            loc(
                lua,
                (|| {
                    let col = cb.check_column(arg(args.as_slice(), 0), 1, "get_header")?;
                    let h = &cb.headers[col];
                    Ok((h.name.clone(), h.unit.clone(), h.aggregation.name()))
                })(),
            )
        });
        methods.add_method_mut("compute", |lua, cb, args: Variadic<Value>| {
            loc(
                lua,
                (|| {
                    let a = args.as_slice();
                    let func = check_option(
                        arg(a, 0),
                        1,
                        "compute",
                        None,
                        &["sum", "avg", "sd", "min", "max", "variance"],
                    )?;
                    let col = cb.check_column(arg(a, 1), 2, "compute")?;
                    let (start, end) = cb.range_args(a, 2, "compute")?;
                    match cb.range(col, start, end) {
                        Some(values) => {
                            let (r, n) = compute(func, &values);
                            Ok((Value::Number(r), Value::Number(n as f64)))
                        }
                        None => Ok((Value::Nil, Value::Nil)),
                    }
                })(),
            )
        });
        methods.add_method_mut("mannwhitneyu", |lua, cb, args: Variadic<Value>| {
            loc(
                lua,
                (|| {
                    let a = args.as_slice();
                    let f = "mannwhitneyu";
                    let col = cb.check_column(arg(a, 0), 1, f)?;
                    let s1 = check_number(arg(a, 1), 2, f)?;
                    let e1 = check_number(arg(a, 2), 3, f)?;
                    if e1 < s1 {
                        return Err(arg_error(3, f, "end_1 must be >= start_1"));
                    }
                    let s2 = check_number(arg(a, 3), 4, f)?;
                    let e2 = check_number(arg(a, 4), 5, f)?;
                    if e2 < s2 {
                        return Err(arg_error(5, f, "end_2 must be >= start_2"));
                    }
                    let cont = match arg(a, 5) {
                        Value::Nil => true,
                        Value::Boolean(b) => *b,
                        v => {
                            return Err(arg_error(
                                6,
                                f,
                                &format!("boolean expected, got {}", crate::lua_util::type_name(v)),
                            ));
                        }
                    };
                    let (Some(x), Some(y)) = (cb.range(col, s1, e1), cb.range(col, s2, e2)) else {
                        return Ok((Value::Nil, Value::Nil));
                    };
                    match mann_whitney_u(&x, &y, cont) {
                        Some((u, p)) => Ok((Value::Number(u), Value::Number(p))),
                        None => Ok((Value::Nil, Value::Nil)),
                    }
                })(),
            )
        });
        methods.add_method("current_time", |_, cb, ()| Ok(cb.current_time_ns()));
        methods.add_function("format", |lua, (ud, fmt): (AnyUserData, Value)| {
            loc(
                lua,
                (|| {
                    let f = check_option(&fmt, 1, "format", None, &["cbuf", "cbufd"])?;
                    {
                        let mut cb = ud.borrow_mut::<CircularBuffer>()?;
                        if f == "cbufd" && cb.delta.is_none() {
                            return Err(arg_error(
                                1,
                                "format",
                                "cbufd output requires enable_delta",
                            ));
                        }
                        cb.format = if f == "cbuf" {
                            Format::Cbuf
                        } else {
                            Format::Cbufd
                        };
                    }
                    Ok(ud)
                })(),
            )
        });
        methods.add_method_mut("fromstring", |lua, cb, args: Variadic<Value>| {
            loc(
                lua,
                (|| {
                    let s = check_string(arg(args.as_slice(), 0), 1, "fromstring")?;
                    cb.restore_values(&s).map_err(rt)
                })(),
            )
        });
        methods.add_meta_method("__tostring", |_, cb, ()| {
            Ok(format!(
                "circular_buffer ({}x{}, {}s per row)",
                cb.rows, cb.columns, cb.seconds_per_row
            ))
        });
    }
}

/// `circular_buffer.new(rows, columns, seconds_per_row[, enable_delta])`.
fn cb_new(lua: &Lua, args: Variadic<Value>) -> mlua::Result<CircularBuffer> {
    let a = args.as_slice();
    let rows = check_integer(arg(a, 0), 1, "new")?;
    if rows <= 1 {
        return Err(arg_error(1, "new", "rows must be > 1"));
    }
    let columns = check_integer(arg(a, 1), 2, "new")?;
    if columns <= 0 {
        return Err(arg_error(2, "new", "columns must be > 0"));
    }
    let spr = check_integer(arg(a, 2), 3, "new")?;
    if spr <= 0 || spr > u32::MAX as i64 {
        return Err(arg_error(3, "new", "seconds_per_row is out of range"));
    }
    let delta = match arg(a, 3) {
        Value::Nil => false,
        Value::Boolean(b) => *b,
        v => {
            return Err(arg_error(
                4,
                "new",
                &format!("boolean expected, got {}", crate::lua_util::type_name(v)),
            ));
        }
    };
    let (rows, columns) = (rows as usize, columns as usize);
    if rows.checked_mul(columns).is_none_or(|c| c > MAX_CELLS) {
        return Err(rt("the requested circular buffer size is too big"));
    }
    let bytes = CircularBuffer::footprint(rows, columns, delta);
    let account = lua.app_data_ref::<Rc<MemoryAccount>>().map(|a| a.clone());
    if let Some(a) = &account {
        a.reserve(lua, bytes)?;
    }
    let mut cb = CircularBuffer::new(rows, columns, spr, delta);
    cb.accounted = if account.is_some() { bytes } else { 0 };
    cb.account = account;
    Ok(cb)
}

/// Builds the `circular_buffer` module table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "new",
        lua.create_function(|lua, args| loc(lua, cb_new(lua, args)))?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_shift_clears_skipped_rows() {
        let mut cb = CircularBuffer::new(3, 1, 1, false);
        assert_eq!(cb.add(0.0, 0, 1.0), Some(1.0));
        assert_eq!(cb.add(2e9, 0, 2.0), Some(2.0));
        assert_eq!(cb.add(4e9, 0, 3.0), Some(3.0));
        assert_eq!(cb.get(2e9, 0), Some(2.0));
        assert_eq!(cb.get(3e9, 0).map(f64::is_nan), Some(true));
        assert_eq!(cb.get(1e9, 0), None);
        let mut out = Vec::new();
        cb.write_output(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"time\":2,\"rows\":3,\"columns\":1,\"seconds_per_row\":1,\"column_info\":[{\"name\":\"Column_1\",\"unit\":\"count\",\"aggregation\":\"sum\"}]}\n2\nnan\n3\n"
        );
    }

    #[test]
    fn mann_whitney_matches_scipy() {
        // scipy.stats.mannwhitneyu([1,2,3,4,5],[6,7,8,9,10], alternative='less'-ish one-sided)
        let (u, p) = mann_whitney_u(&[1., 2., 3., 4., 5.], &[6., 7., 8., 9., 10.], true).unwrap();
        assert_eq!(u, 0.0);
        assert!((p - 0.0060).abs() < 0.0005, "{p}");
    }
}
