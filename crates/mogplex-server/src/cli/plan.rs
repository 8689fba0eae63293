//! `mogplex-server plan create|assign`: which models an account may use.

use super::args::PlanCommand;
use super::{Failure, connect, storage, user_id};

pub async fn run(cmd: PlanCommand) -> Result<(), Failure> {
    match cmd {
        PlanCommand::Create { db, name, models } => {
            let db = connect(&db.database).await?;
            match db.set_plan(name.trim(), &models).await.map_err(storage)? {
                Ok(_) => {
                    println!(
                        "The plan {} allows: {}",
                        name.trim(),
                        if models.is_empty() {
                            "no models".to_owned()
                        } else {
                            models.join(", ")
                        }
                    );
                    Ok(())
                }
                Err(slug) => Err(Failure::new(format!("there is no model {slug}"))
                    .hint("add it first with `mogplex-server model add`")
                    .usage()),
            }
        }
        PlanCommand::Assign { db, email, plan } => {
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            let Some(pid) = db.plan_id(plan.trim()).await.map_err(storage)? else {
                return Err(Failure::new(format!("there is no plan {plan}"))
                    .hint("create it with `mogplex-server plan create`")
                    .usage());
            };
            db.assign_plan(&uid, Some(&pid)).await.map_err(storage)?;
            println!("{email} is now on the plan {}", plan.trim());
            Ok(())
        }
    }
}
