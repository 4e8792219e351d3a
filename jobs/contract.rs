//! The raw extracts the pipeline accepts: canonical names, required columns, personal data and
//! timestamps (docs/contract.md, "Raw extracts"). Users map their own column names to these in
//! pipeline.yaml.

/// One canonical column of an extract.
#[derive(Debug, Clone, Copy)]
pub struct SourceColumn {
    /// Canonical name.
    pub name: &'static str,
    /// Whether every file of the extract must have it.
    pub required: bool,
    /// Personal data that must never reach the warehouse (not even in quarantine).
    pub pii: bool,
    /// A timestamp: read in the business time zone (`time_zone`); one with an explicit offset is
    /// converted into it at extraction (see [`super::timestamps`]).
    pub timestamp: bool,
}

/// One extract's canonical shape.
#[derive(Debug, Clone, Copy)]
pub struct SourceSchema {
    /// Extract name, also its table name `raw.<name>` in SQL.
    pub name: &'static str,
    /// Canonical columns in contract order.
    pub columns: &'static [SourceColumn],
}

impl SourceSchema {
    /// Whether the extract carries personal data.
    pub fn has_pii(&self) -> bool {
        self.columns.iter().any(|c| c.pii)
    }
}

const fn req(name: &'static str) -> SourceColumn {
    SourceColumn {
        name,
        required: true,
        pii: false,
        timestamp: false,
    }
}
const fn opt(name: &'static str) -> SourceColumn {
    SourceColumn {
        name,
        required: false,
        pii: false,
        timestamp: false,
    }
}
const fn pii(name: &'static str) -> SourceColumn {
    SourceColumn {
        name,
        required: false,
        pii: true,
        timestamp: false,
    }
}

/// A timestamp column, required or not.
const fn ts(name: &'static str, required: bool) -> SourceColumn {
    SourceColumn {
        name,
        required,
        pii: false,
        timestamp: true,
    }
}

/// The text that replaces personal data in quarantined rows.
pub const REDACTED: &str = "[redacted]";

/// Every extract of the contract.
pub const SOURCES: &[SourceSchema] = &[
    SourceSchema {
        name: "customers",
        columns: &[
            req("customer_id"),
            pii("full_name"),
            pii("email"),
            pii("phone"),
            opt("gender"),
            pii("birth_date"),
            opt("occupation"),
            pii("annual_income"),
            opt("education"),
            opt("country"),
            opt("region"),
            opt("city"),
            opt("signup_date"),
            opt("acquisition_channel"),
            opt("membership_tier"),
            ts("updated_at", false),
        ],
    },
    SourceSchema {
        name: "orders",
        columns: &[
            req("order_id"),
            req("customer_id"),
            ts("order_ts", true),
            req("total_amount"),
            opt("status"),
            opt("channel"),
            opt("store_id"),
            opt("currency"),
            opt("discount_amount"),
        ],
    },
    SourceSchema {
        name: "order_items",
        columns: &[
            req("order_id"),
            opt("line_no"),
            req("product_id"),
            opt("quantity"),
            opt("unit_price"),
            opt("discount"),
            opt("unit_cost"),
        ],
    },
    SourceSchema {
        name: "products",
        columns: &[
            req("product_id"),
            opt("category"),
            opt("brand"),
            opt("price_tier"),
            opt("list_price"),
            opt("launch_date"),
        ],
    },
    SourceSchema {
        name: "interactions",
        columns: &[
            opt("interaction_id"),
            req("customer_id"),
            ts("ts", true),
            opt("channel"),
            opt("type"),
            opt("satisfaction"),
        ],
    },
    SourceSchema {
        name: "campaigns",
        columns: &[
            req("campaign_id"),
            opt("name"),
            opt("channel"),
            opt("start_date"),
            opt("end_date"),
            opt("cost"),
        ],
    },
    SourceSchema {
        name: "campaign_contacts",
        columns: &[
            req("campaign_id"),
            req("customer_id"),
            ts("contacted_ts", true),
            ts("responded_ts", false),
            opt("converted_order_id"),
        ],
    },
    SourceSchema {
        name: "surveys",
        columns: &[
            req("customer_id"),
            ts("survey_ts", true),
            opt("nps"),
            opt("satisfaction"),
        ],
    },
];

/// The canonical schema of an extract, if `name` is one.
pub fn source_schema(name: &str) -> Option<&'static SourceSchema> {
    SOURCES.iter().find(|s| s.name == name)
}
