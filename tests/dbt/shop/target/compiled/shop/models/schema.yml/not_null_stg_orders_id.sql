
    
    



select id
from "shop"."main"."stg_orders"
where id is null


