"""Saved views on the payments index (P3): save, private or shared, rename, update, delete, default view."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select

from kassa.database import write_transaction
from kassa.extensions import db
from kassa.models import Role, SavedView, UserViewDefault
from tests.factories import make_merchant, make_payment, make_user
from tests.support.payments import login, row_ids, soup_of, text_of


def _form_data(form) -> dict[str, str]:
    """The fields a browser submits for a small form (hidden inputs, text inputs, checked boxes)."""
    data = {}
    for control in form.select("input"):
        if not control.get("name") or (control.get("type") == "checkbox" and not control.has_attr("checked")):
            continue
        data[control["name"]] = control.get("value", "")
    return data


def _form(response, action_value: str | None = None, endpoint: str = "/payments/views"):
    """A form of the index page: the Save view form, or the Manage view form with this `action`."""
    for form in soup_of(response).select("form[method=post]"):
        if not form["action"].startswith(endpoint):
            continue
        action = form.select_one("input[name=action]")
        if action_value is None or (action is not None and action["value"] == action_value):
            return form
    raise AssertionError(f"no {action_value or 'save'} form on the page")


def _path(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _save(client, url: str, name: str, *, shared: bool = False) -> SavedView:
    page = client.get(url)
    data = _form_data(_form(page))
    data.update(name=name, **({"shared": "1"} if shared else {}))
    response = client.post("/payments/views", data=data)
    assert response.status_code == 303
    db.session.rollback()
    view = db.session.scalar(select(SavedView).where(SavedView.name == name))
    assert _path(response.headers["Location"]) == f"/payments/?view={view.id}"
    return view


def _tabs(response) -> list[str]:
    return [text_of(a) for a in soup_of(response).select("nav.tabs a")]


def _shop():
    owner = make_merchant()
    payments = {
        "failed_big": make_payment(owner.account_id, status="failed", method="ach", amount_minor=9000),
        "failed_small": make_payment(owner.account_id, status="failed", method="ach", amount_minor=100),
        "ok": make_payment(owner.account_id, amount_minor=5000),
    }
    return owner, payments


def test_p3_saved_view_keeps_filters_columns_and_sort(client):
    owner, p = _shop()
    login(client, owner)

    view = _save(client, "/payments/?status=failed&sort=amount_asc&cols=amount,status,email", "Failed, small first")

    assert view.shared is False and view.owner_id == owner.id and view.tab == "payments"
    opened = client.get(f"/payments/?view={view.id}")
    assert row_ids(opened) == [p["failed_small"].id, p["failed_big"].id]
    assert [text_of(th) for th in soup_of(opened).select("thead th")] == ["Gross amount", "Status", "Contact email"]
    assert "Failed, small first" in _tabs(opened)
    current = soup_of(opened).select_one('nav.tabs a[aria-current="page"]')
    assert text_of(current) == "Failed, small first"
    # A page cursor is not part of a view.
    assert "after" not in view.state and "before" not in view.state


def test_p3_private_views_are_mine_shared_views_the_accounts(app, client):
    owner, p = _shop()
    colleague = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    outsider = make_merchant()
    make_payment(outsider.account_id)
    login(client, owner)
    private = _save(client, "/payments/?status=failed", "My failures")
    shared = _save(client, "/payments/?sort=amount_desc", "Team: biggest first", shared=True)

    colleague_client = app.test_client()
    login(colleague_client, colleague)
    theirs = colleague_client.get("/payments/")
    assert "Team: biggest first (shared)" in _tabs(theirs)
    assert not any("My failures" in tab for tab in _tabs(theirs))
    assert colleague_client.get(f"/payments/?view={private.id}").status_code == 404
    opened = colleague_client.get(f"/payments/?view={shared.id}")
    assert row_ids(opened)[0] == p["failed_big"].id
    # The colleague may use it, and make it their default, but not change it (no Manage menu).
    assert "Manage view" not in text_of(soup_of(opened))

    outsider_client = app.test_client()
    login(outsider_client, outsider)
    assert not any(name in " ".join(_tabs(outsider_client.get("/payments/")))
                   for name in ("My failures", "Team: biggest first"))
    for view in (private, shared):
        assert outsider_client.get(f"/payments/?view={view.id}").status_code == 404
        assert outsider_client.post(f"/payments/views/{view.id}", data={"action": "delete"}).status_code == 404
    assert db.session.scalar(select(db.func.count()).select_from(SavedView)) == 2


def test_p3_rename_update_and_delete_a_view(client):
    owner, p = _shop()
    login(client, owner)
    view = _save(client, "/payments/?status=failed", "Failures")

    # Rename (and share).
    page = client.get(f"/payments/?view={view.id}")
    data = _form_data(_form(page, "rename", f"/payments/views/{view.id}"))
    data.update(name="Bank failures", shared="1")
    assert client.post(f"/payments/views/{view.id}", data=data).status_code == 303
    db.session.expire_all()
    assert (db.session.get(SavedView, view.id).name, db.session.get(SavedView, view.id).shared) == (
        "Bank failures", True)

    # Update with the filters now on screen: the view's own URL with a changed filter.
    changed = client.get(f"/payments/?view={view.id}&status=failed&amount_min=50")
    assert row_ids(changed) == [p["failed_big"].id]
    data = _form_data(_form(changed, "update", f"/payments/views/{view.id}"))
    assert client.post(f"/payments/views/{view.id}", data=data).status_code == 303
    assert row_ids(client.get(f"/payments/?view={view.id}")) == [p["failed_big"].id]

    # An empty name is refused with a message; nothing changes.
    refused = client.post(f"/payments/views/{view.id}", data={"action": "rename", "name": "  "},
                          follow_redirects=True)
    assert "Give the view a name." in text_of(soup_of(refused))
    db.session.expire_all()
    assert db.session.get(SavedView, view.id).name == "Bank failures"

    # Delete.
    view_id = view.id
    page = client.get(f"/payments/?view={view_id}")
    data = _form_data(_form(page, "delete", f"/payments/views/{view_id}"))
    response = client.post(f"/payments/views/{view_id}", data=data)
    assert response.status_code == 303 and _path(response.headers["Location"]) == "/payments/"
    db.session.rollback()
    assert db.session.get(SavedView, view_id) is None
    assert client.get(f"/payments/?view={view_id}").status_code == 404


def test_p3_only_the_owner_changes_or_deletes_a_shared_view(app, client):
    owner, _p = _shop()
    colleague = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    login(client, owner)
    shared = _save(client, "/payments/?status=failed", "Team view", shared=True)
    other = app.test_client()
    login(other, colleague)

    for data in ({"action": "delete"}, {"action": "rename", "name": "Mine now"},
                 {"action": "update", "state_args": "status=succeeded"}):
        response = other.post(f"/payments/views/{shared.id}", data=data)
        assert response.status_code == 403, data
        assert "Only the person who created a shared view" in text_of(soup_of(response))
    db.session.expire_all()
    view = db.session.get(SavedView, shared.id)
    assert view.name == "Team view" and view.state == {"status": ["failed"]}


def test_p3_default_view_opens_on_a_bare_payments_url(app, client):
    owner, p = _shop()
    colleague = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    login(client, owner)
    view = _save(client, "/payments/?status=failed&sort=amount_asc", "Failures", shared=True)

    page = client.get(f"/payments/?view={view.id}")
    data = _form_data(_form(page, "default", f"/payments/views/{view.id}"))
    assert client.post(f"/payments/views/{view.id}", data=data).status_code == 303

    bare = client.get("/payments/")
    assert row_ids(bare) == [p["failed_small"].id, p["failed_big"].id]
    assert "Default" in " ".join(_tabs(bare))
    # "All payments" still shows everything: its tab must not fall back into the default view.
    all_href = soup_of(bare).find("a", string="All payments")["href"]
    assert set(row_ids(client.get(all_href))) == {pay.id for pay in p.values()}
    # Explicit filters on the bare URL win over the default view.
    assert row_ids(client.get("/payments/?status=succeeded")) == [p["ok"].id]

    # A default is per user: the colleague still lands on all payments.
    other = app.test_client()
    login(other, colleague)
    assert set(row_ids(other.get("/payments/"))) == {pay.id for pay in p.values()}

    assert client.post("/payments/views/default/clear", data={"tab": "payments"}).status_code == 303
    assert set(row_ids(client.get("/payments/"))) == {pay.id for pay in p.values()}
    assert db.session.scalar(select(UserViewDefault)) is None


def test_p3_deleting_the_default_view_falls_back_to_all_payments(client):
    owner, p = _shop()
    login(client, owner)
    view = _save(client, "/payments/?status=failed", "Failures")
    client.post(f"/payments/views/{view.id}", data={"action": "default"})
    client.post(f"/payments/views/{view.id}", data={"action": "delete"})
    assert set(row_ids(client.get("/payments/"))) == {pay.id for pay in p.values()}


def test_p3_a_view_with_a_bad_filter_or_name_is_not_saved(client):
    owner, _p = _shop()
    login(client, owner)
    for data in ({"name": "", "state_args": "status=failed"}, {"name": "x" * 81, "state_args": ""},
                 {"name": "Bad", "state_args": "sort=nope"}, {"name": "Bad", "state_args": "adv=[[[\"x\"]]]"}):
        response = client.post("/payments/views", data=data, follow_redirects=True)
        assert response.status_code == 200
        assert soup_of(response).select_one(".flash--error, [role=alert]") is not None, data
    assert db.session.scalar(select(db.func.count()).select_from(SavedView)) == 0


def test_p3_a_nul_character_in_a_view_name_is_refused_not_a_500(client):
    owner, _p = _shop()
    login(client, owner)
    response = client.post("/payments/views", data={"name": "Fail\x00ures", "state_args": "status=failed"})
    assert response.status_code == 400
    assert "NUL character" in text_of(soup_of(response))
    assert db.session.scalar(select(db.func.count()).select_from(SavedView)) == 0


# -- staying inside a view: pages, sort, columns, filters ---------------------------------------------


def _current_tab(response) -> str:
    return text_of(soup_of(response).select_one('nav.tabs a[aria-current="page"]'))


def _query(form) -> dict[str, list[str]]:
    """What a GET form submits as rendered: hidden and text inputs, checked boxes, selected options."""
    data: dict[str, list[str]] = {}
    for control in form.select("input, select"):
        name = control.get("name")
        if not name or (control.get("type") == "checkbox" and not control.has_attr("checked")):
            continue
        if control.name == "select":
            option = control.select_one("option[selected]") or control.select_one("option")
            value = option.get("value", "")
        else:
            value = control.get("value", "")
        if value or control.get("type") == "hidden":
            data.setdefault(name, []).append(value)
    return data


def _view_of_120_failed(client):
    from datetime import timedelta

    from kassa.clock import now
    from tests.support.payments import bulk_payments

    owner = make_merchant()
    start = now() - timedelta(days=3)
    bulk_payments(owner.account_id, [
        {"amount_minor": 100 + i, "created_at": start + timedelta(minutes=i), "status": "failed",
         "display_status": "failed" if i < 120 else "succeeded"} for i in range(130)])
    login(client, owner)
    return owner, _save(client, "/payments/?status=failed", "Failures")


def test_p3_paging_inside_a_saved_view_keeps_the_view_selected(client):
    from tests.support.payments import page_link

    _owner, view = _view_of_120_failed(client)

    url, seen = f"/payments/?view={view.id}", []
    while url:
        page = client.get(url)
        assert page.status_code == 200
        # Every page: the view's tab is the current one and its Manage menu is there.
        assert _current_tab(page) == "Failures", url
        assert "Manage view" in text_of(soup_of(page)), url
        seen += row_ids(page)
        url = page_link(page, "next")
        if url:
            assert f"view={view.id}" in url
    assert len(seen) == len(set(seen)) == 120
    back = page_link(client.get(page_link(client.get(f"/payments/?view={view.id}"), "next")), "prev")
    assert f"view={view.id}" in back and _current_tab(client.get(back)) == "Failures"


def test_p3_sort_columns_and_filters_changed_inside_a_view_keep_it_selected(client):
    from urllib.parse import parse_qs

    from tests.support.payments import chips

    _owner, view = _view_of_120_failed(client)
    opened = client.get(f"/payments/?view={view.id}")

    # Sort: the quick filter form submits the view along with the new order.
    quick = _query(soup_of(opened).select_one("form.quickfilters"))
    assert quick["view"] == [str(view.id)]
    quick["sort"] = ["amount_asc"]
    sorted_page = client.get("/payments/", query_string=quick)
    assert _current_tab(sorted_page) == "Failures"
    assert row_ids(sorted_page)[0] < row_ids(sorted_page)[1]  # amounts grow with the ids here
    assert "Update with current filters" in text_of(soup_of(sorted_page))

    # Columns.
    columns_form = next(f for f in soup_of(opened).select("form.dropdown__panel[method=get]")
                        if f.select_one("input[name=cols]"))
    columns = _query(columns_form)
    columns["cols"] = ["amount", "email"]
    shown = client.get("/payments/", query_string=columns)
    assert _current_tab(shown) == "Failures"
    assert [text_of(th) for th in soup_of(shown).select("thead th")] == ["Gross amount", "Contact email"]
    assert len(row_ids(shown)) == 50

    # Advanced filters applied from the panel opened inside the view.
    panel = client.get("/payments/filters", query_string={"tab": "payments", **quick})
    base_args = soup_of(panel).select_one("input[name=base_args]")["value"]
    assert f"view={view.id}" in base_args
    applied = client.post("/payments/filters", data={"base_args": base_args, "tab": "payments", "action": "apply",
                                                     "c-0-0-prop": "amount", "c-0-0-op": "lt", "c-0-0-v1": "1.10"})
    assert applied.status_code == 303
    location = applied.headers["Location"]
    assert parse_qs(location.split("?", 1)[1])["view"] == [str(view.id)]
    filtered = client.get(_path(location))
    assert _current_tab(filtered) == "Failures"
    assert chips(filtered) == ["Status: Failed", "Gross amount < 1.10"]  # the view's quick filter, then the new one
    assert len(row_ids(filtered)) == 10


def test_p3_the_default_view_is_selected_on_the_bare_url_and_all_payments_pages_stay_all(client):
    from tests.support.payments import page_link, result_count

    _owner, view = _view_of_120_failed(client)
    client.post(f"/payments/views/{view.id}", data={"action": "default"})

    bare = client.get("/payments/")
    assert _current_tab(bare) == "Failures Default"
    assert f"view={view.id}" in page_link(bare, "next")
    assert result_count(bare) == "120 payments"

    # "All payments" pages through all 130, never falling back into the default view.
    all_href = soup_of(bare).find("a", string="All payments")["href"]
    first = client.get(all_href)
    assert _current_tab(first) == "All payments" and result_count(first) == "130 payments"
    second = client.get(page_link(first, "next"))
    assert _current_tab(second) == "All payments" and result_count(second) == "130 payments"
    # Reset inside a view goes back to the view as saved; on All payments, to all payments.
    reset = soup_of(second).find("a", string="Reset")["href"]
    assert result_count(client.get(reset)) == "130 payments"
    sorted_view = client.get(f"/payments/?view={view.id}&sort=amount_asc")
    assert soup_of(sorted_view).find("a", string="Reset")["href"] == f"/payments/?view={view.id}"


def test_p3_a_default_view_unshared_since_is_no_default_for_the_colleague(app, client):
    """The index reads every tab's default view in one query (B3 speed); a shared view a colleague made their
    default and its owner then unshared is not theirs to open: they land on all payments, the tabs plain."""
    owner, p = _shop()
    colleague = make_user(owner.account_id, Role.PAYMENTS_MANAGER)
    login(client, owner)
    view = _save(client, "/payments/?status=failed", "Failures", shared=True)
    other = app.test_client()
    login(other, colleague)
    assert other.post(f"/payments/views/{view.id}", data={"action": "default"}).status_code == 303
    landed = other.get("/payments/")
    assert row_ids(landed) == row_ids(client.get(f"/payments/?view={view.id}"))
    assert soup_of(landed).find("a", string="All payments")["href"] == "/payments/?view="

    with write_transaction(db.session) as session:  # the owner unshares it
        session.get(SavedView, view.id).shared = False
    landed = other.get("/payments/")
    assert set(row_ids(landed)) == {pay.id for pay in p.values()}
    assert soup_of(landed).find("a", string="All payments")["href"] == "/payments/"
