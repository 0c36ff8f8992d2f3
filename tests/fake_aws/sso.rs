//! IAM Identity Center: SSO OIDC (RegisterClient, StartDeviceAuthorization, CreateToken) and
//! the SSO portal (GetRoleCredentials), restJson1 as AWS speaks them.

use super::*;

pub(super) fn new_client(s: &mut State) -> (String, String) {
    s.counter += 1;
    let id = format!("fake-client-{}", s.counter);
    let secret = format!("fake-client-secret-{}", s.counter);
    s.clients.insert(id.clone(), secret.clone());
    (id, secret)
}

pub(super) fn new_tokens(s: &mut State, client_id: &str, ttl: i64) -> (String, String) {
    s.counter += 1;
    let access = format!("fake-access-token-{}", s.counter);
    let refresh = format!("fake-refresh-token-{}", s.counter);
    s.access_tokens.insert(access.clone(), unix_now() + ttl);
    s.refresh_tokens
        .insert(refresh.clone(), client_id.to_string());
    (access, refresh)
}

/// An SSO OIDC error as AWS sends it: type in `x-amzn-ErrorType`, OAuth code in the body.
pub(super) fn oidc_error(status: u16, error_type: &str, code: &str, description: &str) -> Answer {
    Answer {
        status,
        body: serde_json::json!({"error": code, "error_description": description}).to_string(),
        error_type: Some(format!(
            "{error_type}:http://internal.amazon.com/coral/com.amazonaws.sso.oidc/"
        )),
        content_type: "application/json",
    }
}

/// An SSO portal error as AWS sends it: the type in the body's `__type`.
pub(super) fn portal_error(status: u16, error_type: &str, message: &str) -> Answer {
    json(
        status,
        serde_json::json!({
            "message": message,
            "__type": format!("com.amazonaws.switchboard.portal#{error_type}"),
        }),
    )
}

pub(super) fn oauth_code(error_type: &str) -> &'static str {
    match error_type {
        "InternalServerException" => "server_error",
        "SlowDownException" => "slow_down",
        "InvalidClientException" => "invalid_client",
        "InvalidGrantException" => "invalid_grant",
        "AccessDeniedException" => "access_denied",
        _ => "invalid_request",
    }
}
pub(super) fn register(s: &mut State, req: &serde_json::Value) -> Answer {
    if req["clientType"] != "public" || !req["clientName"].is_string() {
        return oidc_error(
            400,
            "InvalidClientMetadataException",
            "invalid_client_metadata",
            "clientName and clientType=public are required",
        );
    }
    let (id, secret) = new_client(s);
    if req["scopes"].as_array().is_none_or(|a| a.is_empty()) {
        s.scopeless_clients.insert(id.clone());
    }
    let now = unix_now();
    json(
        200,
        serde_json::json!({
            "clientId": id,
            "clientSecret": secret,
            "clientIdIssuedAt": now,
            "clientSecretExpiresAt": now + s.settings.registration_ttl,
        }),
    )
}

pub(super) fn client_ok(s: &State, req: &serde_json::Value) -> bool {
    let id = req["clientId"].as_str().unwrap_or("");
    s.clients.get(id).map(String::as_str) == req["clientSecret"].as_str()
}

pub(super) fn device_authorization(s: &mut State, req: &serde_json::Value, base: &str) -> Answer {
    if !client_ok(s, req) {
        return oidc_error(
            401,
            "InvalidClientException",
            "invalid_client",
            "unknown client",
        );
    }
    if !req["startUrl"].is_string() {
        return oidc_error(
            400,
            "InvalidRequestException",
            "invalid_request",
            "startUrl is required",
        );
    }
    s.counter += 1;
    let device_code = format!("fake-device-code-{}", s.counter);
    let user_code = format!("FAKE-{:04}", s.counter);
    s.devices.insert(
        device_code.clone(),
        Device {
            client_id: req["clientId"].as_str().unwrap_or("").to_string(),
            user_code: user_code.clone(),
            expires: Instant::now() + Duration::from_secs(s.settings.device_expires_in as u64),
            polls: 0,
            approved: false,
            denied: false,
            used: false,
        },
    );
    s.last_user_code = Some(user_code.clone());
    json(
        200,
        serde_json::json!({
            "deviceCode": device_code,
            "userCode": user_code,
            "verificationUri": format!("{base}/device"),
            "verificationUriComplete": format!("{base}/device?user_code={user_code}"),
            "expiresIn": s.settings.device_expires_in,
            "interval": s.settings.interval,
        }),
    )
}

pub(super) fn issue(s: &mut State, client_id: &str) -> Answer {
    let ttl = s.settings.access_token_ttl;
    let (access, refresh) = new_tokens(s, client_id, ttl);
    let mut body = serde_json::json!({
        "accessToken": access,
        "tokenType": "Bearer",
        "expiresIn": ttl,
    });
    if s.settings.refresh_tokens && !s.scopeless_clients.contains(client_id) {
        body["refreshToken"] = serde_json::Value::String(refresh);
    } else {
        s.refresh_tokens.remove(&refresh);
    }
    json(200, body)
}

pub(super) fn token_device(s: &mut State, req: &serde_json::Value) -> Answer {
    if !client_ok(s, req) {
        return oidc_error(
            401,
            "InvalidClientException",
            "invalid_client",
            "unknown client",
        );
    }
    let code = req["deviceCode"].as_str().unwrap_or("").to_string();
    let approve_after = s.settings.approve_after_polls;
    let Some(d) = s.devices.get_mut(&code) else {
        return oidc_error(
            400,
            "InvalidGrantException",
            "invalid_grant",
            "unknown device code",
        );
    };
    if d.used {
        return oidc_error(
            400,
            "InvalidGrantException",
            "invalid_grant",
            "device code already used",
        );
    }
    if Instant::now() > d.expires {
        return oidc_error(
            400,
            "ExpiredTokenException",
            "expired_token",
            "device code expired",
        );
    }
    if d.denied {
        return oidc_error(
            400,
            "AccessDeniedException",
            "access_denied",
            "the user denied access",
        );
    }
    d.polls += 1;
    if approve_after.is_some_and(|n| d.polls >= n) {
        d.approved = true;
    }
    if !d.approved {
        return oidc_error(
            400,
            "AuthorizationPendingException",
            "authorization_pending",
            "Authorization is still pending",
        );
    }
    d.used = true;
    let client = d.client_id.clone();
    issue(s, &client)
}

pub(super) fn token_refresh(s: &mut State, req: &serde_json::Value) -> Answer {
    if !client_ok(s, req) {
        return oidc_error(
            401,
            "InvalidClientException",
            "invalid_client",
            "unknown client",
        );
    }
    let token = req["refreshToken"].as_str().unwrap_or("");
    match s.refresh_tokens.get(token) {
        Some(client) if Some(client.as_str()) == req["clientId"].as_str() => {
            // Refresh tokens rotate: the old one is spent.
            let client = client.clone();
            s.refresh_tokens.remove(token);
            issue(s, &client)
        }
        _ => oidc_error(
            400,
            "InvalidGrantException",
            "invalid_grant",
            "Invalid refresh token",
        ),
    }
}

pub(super) fn role_credentials(s: &mut State, query: &str, bearer: Option<&str>) -> Answer {
    let valid = bearer
        .and_then(|b| s.access_tokens.get(b))
        .is_some_and(|exp| *exp > unix_now());
    if !valid {
        return portal_error(
            401,
            "UnauthorizedException",
            "Session token not found or invalid",
        );
    }
    let params: HashMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let (Some(account), Some(role)) = (params.get("account_id"), params.get("role_name")) else {
        return portal_error(
            400,
            "InvalidRequestException",
            "account_id and role_name are required",
        );
    };
    s.counter += 1;
    let n = s.counter;
    s.role_requests
        .push((account.to_string(), role.to_string()));
    // STS knows these keys, as AWS does: a chain from them is checked and is role chaining.
    s.sts_keys.insert(
        format!("ASIAFAKE{n:012}"),
        StsKey {
            secret: format!("fake-secret-{account}-{role}-{n}"),
            session_token: Some(format!("fake-session-token-{account}-{role}-{n}")),
            kind: KeyKind::RoleSession,
        },
    );
    let ttl = match s.settings.role_credentials_ttl_spread {
        Some((min, max)) if max > min => {
            // FNV-1a of the role's name: stable per role, spread between roles.
            let h = role.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            min + (h % (max - min + 1) as u64) as i64
        }
        Some((min, _)) => min,
        None => s.settings.role_credentials_ttl,
    };
    let expiration_ms = (unix_now() + ttl) * 1000;
    json(
        200,
        serde_json::json!({
            "roleCredentials": {
                "accessKeyId": format!("ASIAFAKE{n:012}"),
                "secretAccessKey": format!("fake-secret-{account}-{role}-{n}"),
                "sessionToken": format!("fake-session-token-{account}-{role}-{n}"),
                "expiration": expiration_ms,
            }
        }),
    )
}
