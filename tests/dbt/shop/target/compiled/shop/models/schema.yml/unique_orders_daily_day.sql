
    
    

select
    day as unique_field,
    count(*) as n_records

from "shop"."main"."orders_daily"
where day is not null
group by day
having count(*) > 1


