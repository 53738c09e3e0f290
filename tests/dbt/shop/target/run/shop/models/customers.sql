
    

    create  table
      "shop"."main"."customers__dbt_tmp"
  
    
    as (
      select customer, count(*) as orders from "shop"."main"."stg_orders" group by customer
    );
    
  