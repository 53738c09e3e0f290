-- Fails on purpose when the run sets the variable break_daily (to test failure reports).
-- depends_on: {{ ref('stg_orders') }}
{% if var('break_daily', false) %}
select * from a_table_that_does_not_exist
{% else %}
select day, count(*) as orders, sum(amount) as revenue from {{ ref('stg_orders') }} group by day
{% endif %}
