
    

    create  table
      "shop"."main"."stg_orders__dbt_tmp"
  
    
    as (
      select id, customer, amount, cast(day as date) as day from "shop"."main"."raw_orders"
    );
    
  