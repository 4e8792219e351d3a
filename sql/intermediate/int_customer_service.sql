-- Intermediate: service interactions and survey answers per customer up to the as-of date.
-- avg_satisfaction averages every satisfaction score given (interactions and surveys); nps is
-- the customer's latest survey answer.
WITH interactions AS (
    SELECT
        customer_id,
        count(*)                                                        AS interactions,
        sum(CASE WHEN type = 'complaint' THEN 1 ELSE 0 END)             AS complaints,
        sum(satisfaction)                                               AS satisfaction_sum,
        count(satisfaction)                                             AS satisfaction_n
    FROM stg_interactions
    WHERE interaction_date <= ${as_of}
    GROUP BY customer_id
),
answers AS (
    SELECT
        customer_id,
        nps,
        satisfaction,
        row_number() OVER (PARTITION BY customer_id ORDER BY survey_ts DESC, nps) AS recency_rank
    FROM stg_surveys
    WHERE CAST(survey_ts AS DATE) <= ${as_of}
),
surveys AS (
    SELECT
        customer_id,
        max(CASE WHEN recency_rank = 1 THEN nps END)                    AS nps,
        sum(satisfaction)                                               AS satisfaction_sum,
        count(satisfaction)                                             AS satisfaction_n
    FROM answers
    GROUP BY customer_id
)
SELECT
    coalesce(i.customer_id, s.customer_id)                              AS customer_id,
    coalesce(i.interactions, 0)                                         AS interactions,
    coalesce(i.complaints, 0)                                           AS complaints,
    CAST(coalesce(i.satisfaction_sum, 0) + coalesce(s.satisfaction_sum, 0) AS DOUBLE)
        / nullif(coalesce(i.satisfaction_n, 0) + coalesce(s.satisfaction_n, 0), 0) AS avg_satisfaction,
    coalesce(i.satisfaction_sum, 0) + coalesce(s.satisfaction_sum, 0)   AS satisfaction_sum,
    coalesce(i.satisfaction_n, 0) + coalesce(s.satisfaction_n, 0)       AS satisfaction_n,
    s.nps
FROM interactions i
FULL OUTER JOIN surveys s ON i.customer_id = s.customer_id
