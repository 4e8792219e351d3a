//! Fixed vocabularies of the synthetic data: canonical categorical values and name parts. The
//! canonical values are what a clean pipeline should end up with after normalising.

/// Preference types, in the order of `PreferenceTypes::as_array`.
pub(super) const PREFERENCE_TYPES: [&str; 4] = [
    "price_sensitive",
    "quality_seeking",
    "trend_following",
    "mainstream",
];

/// Price tiers, cheapest first.
pub(super) const TIERS: [&str; 3] = ["budget", "standard", "premium"];

/// Product categories.
pub(super) const CATEGORIES: [&str; 10] = [
    "electronics",
    "home",
    "apparel",
    "beauty",
    "sports",
    "books",
    "toys",
    "grocery",
    "jewelry",
    "outdoor",
];

/// Syllables that brand names are built from.
pub(super) const BRAND_PARTS: [&str; 20] = [
    "Aur", "Bel", "Cor", "Dax", "Eon", "Fal", "Gra", "Hal", "Iri", "Jad", "Kel", "Lum", "Mar",
    "Nov", "Orb", "Pax", "Qin", "Ros", "Sol", "Tav",
];

/// Suffixes of brand names.
pub(super) const BRAND_SUFFIXES: [&str; 4] = ["a", "ix", "on", "ora"];

/// Order channels.
pub(super) const ORDER_CHANNELS: [&str; 2] = ["online", "store"];

/// Interaction channels.
pub(super) const INTERACTION_CHANNELS: [&str; 5] =
    ["hotline", "online_chat", "email", "social_media", "store"];

/// Interaction types.
pub(super) const INTERACTION_TYPES: [&str; 5] =
    ["inquiry", "complaint", "suggestion", "praise", "other"];

/// Campaign channels.
pub(super) const CAMPAIGN_CHANNELS: [&str; 4] = ["email", "sms", "app", "direct_mail"];

/// Campaign themes by calendar month.
pub(super) const CAMPAIGN_THEMES: [&str; 12] = [
    "New Year",
    "Spring Festival",
    "Women's Day",
    "Spring",
    "Labour Day",
    "Mid-Year \"618\"",
    "Summer",
    "Back to School",
    "Mid-Autumn",
    "Golden Week",
    "Singles' Day 11.11",
    "Year-End",
];

/// Genders.
pub(super) const GENDERS: [&str; 3] = ["F", "M", "other"];

/// Regions.
pub(super) const REGIONS: [&str; 5] = ["north", "south", "east", "west", "central"];

/// Cities per region, in the order of `REGIONS`.
pub(super) const CITIES: [[&str; 4]; 5] = [
    ["Beijing", "Tianjin", "Shijiazhuang", "Taiyuan"],
    ["Guangzhou", "Shenzhen", "Nanning", "Haikou"],
    ["Shanghai", "Hangzhou", "Nanjing", "Suzhou"],
    ["Chengdu", "Chongqing", "Xi'an", "Kunming"],
    ["Wuhan", "Changsha", "Zhengzhou", "Hefei"],
];

/// Country of every customer.
pub(super) const COUNTRY: &str = "CN";

/// Occupations; the last two are chosen by age (students young, retirees old).
pub(super) const OCCUPATIONS: [&str; 12] = [
    "engineer",
    "teacher",
    "doctor",
    "nurse",
    "sales",
    "civil_servant",
    "freelancer",
    "manager",
    "worker",
    "self_employed",
    "student",
    "retired",
];

/// Education levels and their weights.
pub(super) const EDUCATION: [(&str, f64); 5] = [
    ("high_school", 0.25),
    ("vocational", 0.20),
    ("bachelor", 0.38),
    ("master", 0.14),
    ("doctorate", 0.03),
];

/// Acquisition channels and their weights.
pub(super) const ACQUISITION_CHANNELS: [(&str, f64); 6] = [
    ("organic_search", 0.25),
    ("paid_search", 0.20),
    ("social_media", 0.20),
    ("referral", 0.10),
    ("store", 0.15),
    ("email", 0.10),
];

/// Membership tiers by process purchases: basic below 2, silver below 5, gold below 10.
pub(super) const MEMBERSHIP_TIERS: [&str; 4] = ["basic", "silver", "gold", "platinum"];

/// Family names (pinyin).
pub(super) const FAMILY_NAMES: [&str; 24] = [
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma",
    "Zhu", "Hu", "Guo", "He", "Lin", "Luo", "Gao", "Zheng", "Liang", "Xie", "Tang",
];

/// Given names (pinyin).
pub(super) const GIVEN_NAMES: [&str; 24] = [
    "Wei", "Fang", "Na", "Min", "Jing", "Lei", "Jun", "Yan", "Yong", "Xiu", "Tao", "Ming", "Hui",
    "Lan", "Qiang", "Ping", "Gang", "Li", "Xin", "Yu", "Hao", "Ting", "Bo", "Chen",
];

/// English given names used by some customers.
pub(super) const ENGLISH_NAMES: [&str; 12] = [
    "Lucy", "David", "Grace", "Kevin", "Amy", "Jason", "Cindy", "Eric", "Helen", "Tony", "Vivian",
    "Leo",
];

/// Email domains (reserved example domains).
pub(super) const EMAIL_DOMAINS: [&str; 4] = [
    "example.com",
    "example.net",
    "example.org",
    "mail.example.cn",
];
