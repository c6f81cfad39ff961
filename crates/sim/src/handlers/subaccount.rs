//! `/sapi/v1/sub-account/...` for a master account: its sub-accounts, their API keys
//! (list and delete), and transfers. Only a master account's key may call them; Binance
//! refuses every other key, and refuses key management on asset-management sub-accounts.
use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{d8, Ctx};
use crate::state::{Key, SubTransfer};
use crate::types::ApiError;

/// -1002, as reported for a key that is not a master account's.
fn not_master() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        -1002,
        "You are not authorized to execute this request.",
    )
}

/// The calling key, which must be a master account's.
fn master(ctx: &Ctx) -> Result<Key, ApiError> {
    let key = ctx.key.clone().ok_or_else(|| ApiError::missing("apiKey"))?;
    if !ctx.state.is_master_key(&key) {
        return Err(not_master());
    }
    Ok(key)
}

/// The sub-account named by `email`, for key management.
fn managed_sub(ctx: &Ctx) -> Result<String, ApiError> {
    let email = ctx.params.required("email")?.trim().to_string();
    let sub = ctx
        .state
        .accounts
        .as_ref()
        .and_then(|a| a.sub_accounts.iter().find(|s| s.email == email))
        .ok_or_else(|| ApiError::bad_request(-1102, "Sub-account does not exist."))?;
    if sub.asset_management {
        return Err(ApiError::bad_request(
            -9000,
            "Unsupported operation: this is an asset management sub-account.",
        ));
    }
    Ok(email)
}

/// `GET /sapi/v1/sub-account/list`.
pub fn list(ctx: &mut Ctx) -> Result<Value, ApiError> {
    master(ctx)?;
    let filter = ctx.params.get("email").filter(|e| !e.is_empty());
    let subs: Vec<Value> = ctx
        .state
        .accounts
        .iter()
        .flat_map(|a| a.sub_accounts.iter())
        .filter(|s| filter.is_none_or(|f| f == s.email))
        .map(|s| {
            json!({
                "email": s.email,
                "isFreeze": false,
                "createTime": 1_672_531_200_000i64,
                "isManagedSubAccount": false,
                "isAssetManagementSubAccount": s.asset_management,
            })
        })
        .collect();
    Ok(json!({ "subAccounts": subs }))
}

/// `GET /sapi/v1/sub-account/subAccountApi`: the sub-account's live keys.
pub fn api_keys(ctx: &mut Ctx) -> Result<Value, ApiError> {
    master(ctx)?;
    let email = managed_sub(ctx)?;
    let keys: Vec<Value> = ctx
        .state
        .keys
        .iter()
        .filter(|k| !k.deleted && k.account.as_deref() == Some(email.as_str()))
        .map(|k| {
            let p = k.permissions;
            json!({
                "apiName": k.label,
                "apiKey": k.api_key,
                "canTrade": p.spot,
                "canMarginLoanRepay": p.margin,
                "canFuturesTrade": p.futures,
                "canUniversalTransfer": p.spot || p.margin || p.futures,
                "canVanillaOptions": p.options,
                "canWithdraw": p.withdrawals,
                "status": if k.ip_whitelist.is_empty() { 1 } else { 2 },
                "ipList": k.ip_whitelist.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(),
                "createTime": k.created_ms,
            })
        })
        .collect();
    Ok(json!({ "list": keys }))
}

/// `DELETE /sapi/v1/sub-account/subAccountApi`: answers `{}`.
pub fn delete_api_key(ctx: &mut Ctx) -> Result<Value, ApiError> {
    master(ctx)?;
    let email = managed_sub(ctx)?;
    let target = ctx.params.required("subAccountApiKey")?.trim().to_string();
    let key = ctx
        .state
        .keys
        .iter_mut()
        .find(|k| !k.deleted && k.api_key == target && k.account.as_deref() == Some(email.as_str()))
        .ok_or_else(|| ApiError::bad_request(-2008, "Invalid Api-Key ID."))?;
    key.deleted = true;
    Ok(json!({}))
}

/// Transfers of `kind` inside `startTime`..`endTime` (all, when not given), newest first.
fn transfers_of<'a>(ctx: &'a Ctx, kind: &'a str) -> Result<Vec<&'a SubTransfer>, ApiError> {
    let start = ctx.params.i64("startTime")?.unwrap_or(i64::MIN);
    let end = ctx.params.i64("endTime")?.unwrap_or(i64::MAX);
    let mut v: Vec<&SubTransfer> = ctx
        .state
        .sub_transfers
        .iter()
        .filter(|t| t.kind == kind && t.time >= start && t.time <= end)
        .collect();
    v.sort_by_key(|t| std::cmp::Reverse(t.time));
    Ok(v)
}

/// `GET /sapi/v1/sub-account/sub/transfer/history` (master's view): spot transfers
/// between the master and its sub-accounts.
pub fn transfer_history(ctx: &mut Ctx) -> Result<Value, ApiError> {
    master(ctx)?;
    let rows: Vec<Value> = transfers_of(ctx, "spot")?
        .into_iter()
        .map(|t| {
            json!({
                "from": t.from, "to": t.to, "asset": t.asset, "qty": d8(t.amount),
                "status": "SUCCESS", "tranId": t.tran_id, "time": t.time,
            })
        })
        .collect();
    Ok(Value::Array(rows))
}

/// `GET /sapi/v1/sub-account/universalTransfer` (master's view).
pub fn universal_transfers(ctx: &mut Ctx) -> Result<Value, ApiError> {
    master(ctx)?;
    let rows: Vec<Value> = transfers_of(ctx, "universal")?
        .into_iter()
        .map(|t| {
            json!({
                "tranId": t.tran_id, "fromEmail": t.from, "toEmail": t.to, "asset": t.asset,
                "amount": d8(t.amount), "createTimeStamp": t.time, "fromAccountType": "SPOT",
                "toAccountType": "SPOT", "status": "SUCCESS", "clientTranId": "",
            })
        })
        .collect();
    let total = rows.len();
    Ok(json!({ "result": rows, "totalCount": total }))
}

/// `GET /sapi/v1/sub-account/futures/internalTransfer` (master's view): `email` and
/// `futuresType` (1 USDⓈ-M, 2 COIN-M) are mandatory.
pub fn futures_internal_transfers(ctx: &mut Ctx) -> Result<Value, ApiError> {
    master(ctx)?;
    let futures_type = ctx.params.required("futuresType")?;
    let futures_type: u8 = match futures_type {
        "1" => 1,
        "2" => 2,
        _ => return Err(ApiError::illegal("futuresType")),
    };
    let email = ctx.params.required("email")?.trim().to_string();
    let kind = if futures_type == 1 { "usdm" } else { "coinm" };
    let rows: Vec<Value> = transfers_of(ctx, kind)?
        .into_iter()
        .filter(|t| t.from == email || t.to == email)
        .map(|t| {
            json!({
                "from": t.from, "to": t.to, "asset": t.asset, "qty": d8(t.amount),
                "tranId": t.tran_id, "time": t.time,
            })
        })
        .collect();
    Ok(json!({ "success": true, "futuresType": futures_type, "transfers": rows }))
}
