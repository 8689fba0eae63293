//! `mogplex-server plan create|list|assign`: which models an account may use.

use super::args::PlanCommand;
use super::{Failure, audited, connect, say, storage, user_id};
use serde_json::json;

pub async fn run(cmd: PlanCommand) -> Result<(), Failure> {
    match cmd {
        PlanCommand::List { db } => {
            let json = db.json;
            let db = connect(&db.database).await?;
            let plans = db.list_plans().await.map_err(storage)?;
            if json {
                println!("{}", json!({ "plans": plans }));
            } else {
                for p in plans {
                    println!(
                        "{}\t{} accounts\t{}",
                        p.name,
                        p.accounts,
                        if p.models.is_empty() {
                            "no models".to_owned()
                        } else {
                            p.models.join(", ")
                        }
                    );
                }
            }
            Ok(())
        }
        PlanCommand::Create { db, name, models } => {
            let json = db.json;
            let db = connect(&db.database).await?;
            match db.set_plan(name.trim(), &models).await.map_err(storage)? {
                Ok(_) => {
                    audited(&db, format!("plan create {}", name.trim()), None).await;
                    if json {
                        println!("{}", json!({"plan": name.trim(), "models": models}));
                        return Ok(());
                    }
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
            let json = db.json;
            let db = connect(&db.database).await?;
            let uid = user_id(&db, &email).await?;
            let Some(pid) = db.plan_id(plan.trim()).await.map_err(storage)? else {
                return Err(Failure::new(format!("there is no plan {plan}"))
                    .hint("create it with `mogplex-server plan create`")
                    .usage());
            };
            db.assign_plan(&uid, Some(&pid)).await.map_err(storage)?;
            audited(
                &db,
                format!("plan assign {}", plan.trim()),
                Some((&uid, &email)),
            )
            .await;
            say(
                json,
                json!({"email": email, "plan": plan.trim()}),
                format!("{email} is now on the plan {}", plan.trim()),
            );
            Ok(())
        }
    }
}
