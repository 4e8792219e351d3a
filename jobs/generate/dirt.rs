//! The planted-dirt and expected clean counts of a generated dataset
//! (`_ground_truth/dirt.json`), which the tests reconcile the pipeline's quarantine against.

use std::collections::BTreeMap;

/// Exact counts of what was written. Dirt keys count planted dirty rows or cells; the other keys
/// are the expected clean counts. Serialised as `{"<extract>": {"<key>": count}}`
/// ([`DirtCounts::to_map`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirtCounts {
    // customers
    /// Customers (distinct customer_id): `customers.valid`.
    pub customers: u64,
    /// Rows of the customers extract: `customers.rows`.
    pub customer_rows: u64,
    /// Superseded (older updated_at) rows of duplicated customers: `customers.duplicate_customer`.
    pub duplicate_customer: u64,
    /// Rows with an invalid email: `customers.invalid_email`.
    pub invalid_email: u64,
    /// Region cells with stray case/whitespace: `customers.region_case_whitespace`.
    pub region_case_whitespace: u64,
    /// Gender cells with stray case/whitespace: `customers.gender_case_whitespace`.
    pub gender_case_whitespace: u64,
    /// Prospects (never ordered): `customers.prospects`.
    pub prospects: u64,
    /// Purchasing customers still alive at `end`: `customers.alive_at_end`.
    pub alive_at_end: u64,
    // orders
    /// Rows of the orders extract: `orders.rows`.
    pub order_rows: u64,
    /// Process (completed) orders, each counted once: `orders.process`.
    pub process_orders: u64,
    /// Process orders with an empty status: `orders.status_missing` (not dirt: means completed).
    pub status_missing: u64,
    /// Cancelled orders: `orders.cancelled`.
    pub cancelled_orders: u64,
    /// Returned orders: `orders.returned`.
    pub returned_orders: u64,
    /// Extra identical copies of process orders: `orders.duplicate_order_id`.
    pub duplicate_order_id: u64,
    /// Channel cells with stray case/whitespace: `orders.channel_case_whitespace`.
    pub channel_case_whitespace: u64,
    /// Extra orders with an unparseable order_ts: `orders.invalid_order_ts`.
    pub invalid_order_ts: u64,
    /// Extra orders with an unparseable total_amount: `orders.invalid_total_amount`.
    pub invalid_total_amount: u64,
    /// Extra orders with total_amount zero or negative: `orders.non_positive_amount`.
    pub non_positive_amount: u64,
    /// Extra orders of a customer_id that does not exist: `orders.unknown_customer`.
    pub unknown_customer: u64,
    /// Extra orders of real customers dated after `end`: `orders.after_end`.
    pub after_end: u64,
    // order_items
    /// Rows of the order_items extract: `order_items.rows`.
    pub item_rows: u64,
    /// Item rows of process orders with quantity "two", "1.5.0" or empty:
    /// `order_items.invalid_quantity`.
    pub invalid_quantity: u64,
    // campaign_contacts
    /// Contacts with a response: `campaign_contacts.responded`.
    pub contacts_responded: u64,
    /// Contacts with a converted order: `campaign_contacts.converted`.
    pub contacts_converted: u64,
}

impl DirtCounts {
    pub(super) fn add(&mut self, o: &DirtCounts) {
        macro_rules! sum {
            ($($f:ident),*) => { $( self.$f += o.$f; )* };
        }
        sum!(
            customers,
            customer_rows,
            duplicate_customer,
            invalid_email,
            region_case_whitespace,
            gender_case_whitespace,
            prospects,
            alive_at_end,
            order_rows,
            process_orders,
            status_missing,
            cancelled_orders,
            returned_orders,
            duplicate_order_id,
            channel_case_whitespace,
            invalid_order_ts,
            invalid_total_amount,
            non_positive_amount,
            unknown_customer,
            after_end,
            item_rows,
            invalid_quantity,
            contacts_responded,
            contacts_converted
        );
    }

    /// Whether a key of [`DirtCounts::to_map`] counts planted dirt (the others are clean counts).
    pub fn is_dirt_key(key: &str) -> bool {
        !matches!(
            key,
            "rows"
                | "valid"
                | "prospects"
                | "alive_at_end"
                | "process"
                | "cancelled"
                | "returned"
                | "status_missing"
                | "responded"
                | "converted"
        )
    }

    /// The counts as `{"<extract>": {"<key>": count}}`, the shape of `dirt.json`.
    /// Dirt keys: customers.{duplicate_customer, invalid_email, region_case_whitespace,
    /// gender_case_whitespace}, orders.{duplicate_order_id, channel_case_whitespace,
    /// invalid_order_ts, invalid_total_amount, non_positive_amount, unknown_customer,
    /// after_end}, order_items.invalid_quantity. Clean counts: customers.{rows, valid,
    /// prospects, alive_at_end}, orders.{rows, process, cancelled, returned, status_missing,
    /// valid (= process + cancelled + returned)}, order_items.rows,
    /// campaign_contacts.{responded, converted}.
    pub fn to_map(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let mut m: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let mut put = |extract: &str, key: &str, v: u64| {
            m.entry(extract.to_string())
                .or_default()
                .insert(key.to_string(), v);
        };
        put("customers", "duplicate_customer", self.duplicate_customer);
        put("customers", "invalid_email", self.invalid_email);
        put(
            "customers",
            "region_case_whitespace",
            self.region_case_whitespace,
        );
        put(
            "customers",
            "gender_case_whitespace",
            self.gender_case_whitespace,
        );
        put("customers", "rows", self.customer_rows);
        put("customers", "valid", self.customers);
        put("customers", "prospects", self.prospects);
        put("customers", "alive_at_end", self.alive_at_end);
        put("orders", "duplicate_order_id", self.duplicate_order_id);
        put(
            "orders",
            "channel_case_whitespace",
            self.channel_case_whitespace,
        );
        put("orders", "invalid_order_ts", self.invalid_order_ts);
        put("orders", "invalid_total_amount", self.invalid_total_amount);
        put("orders", "non_positive_amount", self.non_positive_amount);
        put("orders", "unknown_customer", self.unknown_customer);
        put("orders", "after_end", self.after_end);
        put("orders", "rows", self.order_rows);
        put("orders", "process", self.process_orders);
        put("orders", "cancelled", self.cancelled_orders);
        put("orders", "returned", self.returned_orders);
        put("orders", "status_missing", self.status_missing);
        put(
            "orders",
            "valid",
            self.process_orders + self.cancelled_orders + self.returned_orders,
        );
        put("order_items", "invalid_quantity", self.invalid_quantity);
        put("order_items", "rows", self.item_rows);
        put("campaign_contacts", "responded", self.contacts_responded);
        put("campaign_contacts", "converted", self.contacts_converted);
        m
    }
}
