
    

    create  table
      "shop"."main"."orders_daily__dbt_tmp"
  
    
    as (
      -- Fails on purpose when the run sets the variable break_daily (to test failure reports).

select day, count(*) as orders, sum(amount) as revenue from "shop"."main"."stg_orders" group by day

    );
    
  