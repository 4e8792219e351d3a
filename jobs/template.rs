//! `${name}` templates: one syntax for pipeline.yaml's variables (`${raw}`, `${env:NAME}`) and
//! the SQL stages' parameters (`${period_start}`), on the ground floor so that the job
//! definition and the stages both read it without importing each other.

/// Replaces `${name}` with `lookup(name)`; `$$` is a literal `$`.
pub fn substitute(
    text: &str,
    mut lookup: impl FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in `{text}`"))?;
            out.push_str(&lookup(body[..end].trim())?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}
