def test_health_reports_database_and_scheduler(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json["database"]["ok"] is True
    assert "scheduler" in r.json


def test_register_via_api(api, org):
    kefu = api("kefu")
    r = kefu.post(
        "/api/v1/complaint/",
        json={
            "content": "电梯坏了",
            "customer_name": "测试",
            "customer_phone": "13800138000",
            "department": org.dept("GC").id,
            "received_at": "2026-09-30T15:00:00+08:00",
            "channel": 1,
            "category": 1,
            "level": 1,
        },
    )
    assert r.status_code == 201, r.json
    got = kefu.get(f"/api/v1/complaint/{r.json['id']}").json["result"]
    assert got["received_at"] == "2026-09-30T15:00:00+08:00"
