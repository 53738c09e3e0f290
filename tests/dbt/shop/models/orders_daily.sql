-- Fails on purpose when the run sets the variable break_daily (to test failure reports), and
-- runs for hours with slow_daily (to test that cancelling stops dbt).
-- depends_on: {{ ref('stg_orders') }}
{% if var('break_daily', false) %}
select * from a_table_that_does_not_exist
{% elif var('slow_daily', false) %}
select sum(a.range * b.range) as n from range(100000000) a, range(100000000) b
{% else %}
select day, count(*) as orders, sum(amount) as revenue from {{ ref('stg_orders') }} group by day
{% endif %}
