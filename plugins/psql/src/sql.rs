//! SQL built from structured arguments: every identifier quoted, every value a `$n` parameter.
//! Nothing an agent sends is ever spliced into SQL text except through [`ident`].

use infra_sdk::prelude::*;
use serde_json::Map;

/// A quoted identifier: `"name"`, inner quotes doubled. Empty names and NUL are refused.
pub fn ident(name: &str, field: &str) -> Result<String, ToolError> {
    if name.is_empty() || name.contains('\0') {
        return Err(ToolError::invalid(
            field,
            format!("'{name}' is not a valid identifier"),
        ));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// `"schema"."table"`: `table` may carry its schema as `schema.table` when `schema` is absent.
pub fn table_name(table: &str, schema: Option<&str>) -> Result<String, ToolError> {
    let (schema, table) = match (schema, table.split_once('.')) {
        (Some(s), _) => (Some(s), table),
        (None, Some((s, t))) => (Some(s), t),
        (None, None) => (None, table),
    };
    let t = ident(table, "table")?;
    Ok(match schema {
        Some(s) => format!("{}.{t}", ident(s, "schema")?),
        None => t,
    })
}

/// A statement being built and its parameters.
#[derive(Debug, Default)]
pub struct Built {
    /// The SQL text with `$n` placeholders.
    pub sql: String,
    /// The values, `$1` first.
    pub params: Vec<Value>,
}

impl Built {
    /// Adds a parameter and returns its placeholder.
    pub fn bind(&mut self, v: &Value) -> String {
        self.params.push(v.clone());
        format!("${}", self.params.len())
    }
}

/// Comparison operators a filter may use.
const OPS: &[&str] = &[
    "=", "<>", "!=", "<", "<=", ">", ">=", "like", "ilike", "in", "is_null",
];

/// `WHERE …` from a filter object: `{"col": value}` is equality (`null` is `IS NULL`);
/// `{"col": {"op": ">", "value": 5}}` uses one of `=, <>, !=, <, <=, >, >=, like, ilike, in`
/// (`in` takes an array) or `{"op": "is_null", "value": true|false}`. Conditions are ANDed.
/// Returns an empty string for no filter.
pub fn where_clause(
    b: &mut Built,
    filter: Option<&Map<String, Value>>,
) -> Result<String, ToolError> {
    let Some(filter) = filter.filter(|f| !f.is_empty()) else {
        return Ok(String::new());
    };
    let mut parts = Vec::with_capacity(filter.len());
    for (col, cond) in filter {
        let c = ident(col, "where")?;
        let (op, value) = match cond {
            Value::Object(o) if o.contains_key("op") => {
                let op = o.get("op").and_then(Value::as_str).unwrap_or("");
                let op = op.to_ascii_lowercase();
                if !OPS.contains(&op.as_str()) {
                    return Err(ToolError::invalid(
                        "where",
                        format!(
                            "operator '{op}' on '{col}' is not one of {}",
                            OPS.join(", ")
                        ),
                    ));
                }
                (op, o.get("value").cloned().unwrap_or(Value::Null))
            }
            other => ("=".to_string(), other.clone()),
        };
        let part = match (op.as_str(), &value) {
            ("is_null", v) => {
                if v.as_bool().unwrap_or(true) {
                    format!("{c} IS NULL")
                } else {
                    format!("{c} IS NOT NULL")
                }
            }
            ("=", Value::Null) => format!("{c} IS NULL"),
            ("<>" | "!=", Value::Null) => format!("{c} IS NOT NULL"),
            ("in", Value::Array(items)) => {
                if items.is_empty() {
                    "false".to_string()
                } else {
                    let ph: Vec<String> = items.iter().map(|v| b.bind(v)).collect();
                    format!("{c} IN ({})", ph.join(", "))
                }
            }
            ("in", _) => {
                return Err(ToolError::invalid(
                    "where",
                    format!("'in' on '{col}' takes an array value"),
                ));
            }
            (op, v) => {
                let sql_op = match op {
                    "!=" => "<>",
                    "like" => "LIKE",
                    "ilike" => "ILIKE",
                    o => o,
                };
                format!("{c} {sql_op} {}", b.bind(v))
            }
        };
        parts.push(part);
    }
    Ok(format!(" WHERE {}", parts.join(" AND ")))
}

/// A column list: `*` when empty.
pub fn column_list(cols: Option<&[String]>, field: &str) -> Result<String, ToolError> {
    match cols {
        None | Some([]) => Ok("*".into()),
        Some(cols) => Ok(cols
            .iter()
            .map(|c| {
                if c == "*" {
                    Ok("*".to_string())
                } else {
                    ident(c, field)
                }
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(", ")),
    }
}

/// ` ORDER BY …` from `["col", "-col"]` (a leading `-` sorts descending).
pub fn order_by(order: Option<&[String]>) -> Result<String, ToolError> {
    let Some(order) = order.filter(|o| !o.is_empty()) else {
        return Ok(String::new());
    };
    let parts: Vec<String> = order
        .iter()
        .map(|o| match o.strip_prefix('-') {
            Some(c) => Ok(format!("{} DESC", ident(c, "order_by")?)),
            None => ident(o, "order_by"),
        })
        .collect::<Result<_, _>>()?;
    Ok(format!(" ORDER BY {}", parts.join(", ")))
}

/// ` RETURNING …`, or nothing.
pub fn returning(cols: Option<&[String]>) -> Result<String, ToolError> {
    match cols {
        None | Some([]) => Ok(String::new()),
        some => Ok(format!(" RETURNING {}", column_list(some, "returning")?)),
    }
}

/// The shape of a table query.
pub struct Select<'a> {
    /// Quoted table name.
    pub table: String,
    /// Columns (empty: all).
    pub columns: Option<&'a [String]>,
    /// Filter.
    pub filter: Option<&'a Map<String, Value>>,
    /// Order.
    pub order_by: Option<&'a [String]>,
    /// Rows at most.
    pub limit: Option<u64>,
    /// Rows skipped.
    pub offset: Option<u64>,
}

/// `SELECT cols FROM t WHERE … ORDER BY … LIMIT $n OFFSET $m`.
pub fn select(s: &Select) -> Result<Built, ToolError> {
    let mut b = Built::default();
    let cols = column_list(s.columns, "columns")?;
    let w = where_clause(&mut b, s.filter)?;
    let mut sql = format!("SELECT {cols} FROM {}{w}{}", s.table, order_by(s.order_by)?);
    if let Some(l) = s.limit {
        let p = b.bind(&json!(l));
        sql.push_str(&format!(" LIMIT {p}"));
    }
    if let Some(o) = s.offset {
        let p = b.bind(&json!(o));
        sql.push_str(&format!(" OFFSET {p}"));
    }
    b.sql = sql;
    Ok(b)
}

/// `SELECT count(*) AS count FROM t WHERE …`.
pub fn count(table: &str, filter: Option<&Map<String, Value>>) -> Result<Built, ToolError> {
    let mut b = Built::default();
    let w = where_clause(&mut b, filter)?;
    b.sql = format!("SELECT count(*) AS count FROM {table}{w}");
    Ok(b)
}

/// `SELECT EXISTS (SELECT 1 FROM t WHERE …) AS exists`.
pub fn exists(table: &str, filter: Option<&Map<String, Value>>) -> Result<Built, ToolError> {
    let mut b = Built::default();
    let w = where_clause(&mut b, filter)?;
    b.sql = format!("SELECT EXISTS (SELECT 1 FROM {table}{w}) AS \"exists\"");
    Ok(b)
}

/// `INSERT INTO t (cols) VALUES (…), (…) RETURNING …`; a column missing from a row is DEFAULT.
pub fn insert(
    table: &str,
    rows: &[Map<String, Value>],
    ret: Option<&[String]>,
) -> Result<Built, ToolError> {
    if rows.is_empty() {
        return Err(ToolError::invalid(
            "values",
            "give an object of column → value, or a non-empty array of them",
        ));
    }
    let mut cols: Vec<&String> = Vec::new();
    for r in rows {
        for k in r.keys() {
            if !cols.contains(&k) {
                cols.push(k);
            }
        }
    }
    let mut b = Built::default();
    if cols.is_empty() {
        b.sql = format!("INSERT INTO {table} DEFAULT VALUES{}", returning(ret)?);
        if rows.len() > 1 {
            return Err(ToolError::invalid(
                "values",
                "rows with no columns insert defaults; give one such row at a time",
            ));
        }
        return Ok(b);
    }
    let names = cols
        .iter()
        .map(|c| ident(c, "values"))
        .collect::<Result<Vec<_>, _>>()?
        .join(", ");
    let mut tuples = Vec::with_capacity(rows.len());
    for r in rows {
        let vals: Vec<String> = cols
            .iter()
            .map(|c| match r.get(*c) {
                Some(v) => b.bind(v),
                None => "DEFAULT".to_string(),
            })
            .collect();
        tuples.push(format!("({})", vals.join(", ")));
    }
    b.sql = format!(
        "INSERT INTO {table} ({names}) VALUES {}{}",
        tuples.join(", "),
        returning(ret)?
    );
    Ok(b)
}

/// Refuses an unfiltered update or delete unless `all_rows` says so.
fn guard(
    action: &str,
    filter: Option<&Map<String, Value>>,
    all_rows: bool,
) -> Result<(), ToolError> {
    if filter.is_none_or(|f| f.is_empty()) && !all_rows {
        return Err(ToolError::invalid(
            "where",
            format!(
                "{action} without a filter would touch every row; give `where`, or set `all_rows: true` if that is meant"
            ),
        ));
    }
    Ok(())
}

/// `UPDATE t SET c = $n, … WHERE … RETURNING …`.
pub fn update(
    table: &str,
    set: &Map<String, Value>,
    filter: Option<&Map<String, Value>>,
    all_rows: bool,
    ret: Option<&[String]>,
) -> Result<Built, ToolError> {
    guard("update", filter, all_rows)?;
    if set.is_empty() {
        return Err(ToolError::invalid(
            "set",
            "give at least one column → value",
        ));
    }
    let mut b = Built::default();
    let mut assigns = Vec::with_capacity(set.len());
    for (c, v) in set {
        let c = ident(c, "set")?;
        assigns.push(format!("{c} = {}", b.bind(v)));
    }
    let w = where_clause(&mut b, filter)?;
    b.sql = format!(
        "UPDATE {table} SET {}{w}{}",
        assigns.join(", "),
        returning(ret)?
    );
    Ok(b)
}

/// `DELETE FROM t WHERE … RETURNING …`.
pub fn delete(
    table: &str,
    filter: Option<&Map<String, Value>>,
    all_rows: bool,
    ret: Option<&[String]>,
) -> Result<Built, ToolError> {
    guard("delete", filter, all_rows)?;
    let mut b = Built::default();
    let w = where_clause(&mut b, filter)?;
    b.sql = format!("DELETE FROM {table}{w}{}", returning(ret)?);
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn identifiers_are_quoted_and_values_bound() {
        assert_eq!(ident("a\"b", "t").unwrap(), "\"a\"\"b\"");
        assert_eq!(
            table_name("public.users", None).unwrap(),
            "\"public\".\"users\""
        );
        let f = obj(
            json!({"name": "x'; drop table y; --", "age": {"op": ">", "value": 3}, "gone": null}),
        );
        let b = select(&Select {
            table: table_name("users", None).unwrap(),
            columns: Some(&["id".to_string()]),
            filter: Some(&f),
            order_by: Some(&["-id".to_string()]),
            limit: Some(5),
            offset: None,
        })
        .unwrap();
        assert_eq!(
            b.sql,
            "SELECT \"id\" FROM \"users\" WHERE \"age\" > $1 AND \"gone\" IS NULL AND \"name\" = $2 ORDER BY \"id\" DESC LIMIT $3"
        );
        assert_eq!(
            b.params,
            vec![json!(3), json!("x'; drop table y; --"), json!(5)]
        );
    }

    #[test]
    fn unfiltered_writes_are_refused_unless_all_rows() {
        assert!(delete("\"t\"", None, false, None).is_err());
        assert!(delete("\"t\"", Some(&Map::new()), false, None).is_err());
        assert_eq!(
            delete("\"t\"", None, true, None).unwrap().sql,
            "DELETE FROM \"t\""
        );
        let set = obj(json!({"a": 1}));
        assert!(update("\"t\"", &set, None, false, None).is_err());
        let b = update(
            "\"t\"",
            &set,
            Some(&obj(json!({"id": 2}))),
            false,
            Some(&["*".into()]),
        )
        .unwrap();
        assert_eq!(
            b.sql,
            "UPDATE \"t\" SET \"a\" = $1 WHERE \"id\" = $2 RETURNING *"
        );
    }

    #[test]
    fn insert_fills_missing_columns_with_default() {
        let rows = vec![obj(json!({"a": 1, "b": 2})), obj(json!({"a": 3}))];
        let b = insert("\"t\"", &rows, None).unwrap();
        assert_eq!(
            b.sql,
            "INSERT INTO \"t\" (\"a\", \"b\") VALUES ($1, $2), ($3, DEFAULT)"
        );
        assert_eq!(b.params, vec![json!(1), json!(2), json!(3)]);
    }
}
