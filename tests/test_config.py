"""Configuration (couchpy.config), admin password hashing (couchpy.passwords) and the start-up
preparation of the config file (couchpy_cli.prepare_config).

CouchDB's conventions are the reference: section/key names of local.ini, `infinity` for unlimited,
admin hashes `-pbkdf2:<prf>-<derived hex>,<salt>,<iterations>` (couch_passwords.erl in 3.4), the
older `-pbkdf2-` (SHA-1) and `-hashed-` forms recognised as already hashed, and plain-text
`[admins]` entries replaced by hashes on start.
"""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from couchpy import passwords
from couchpy.config import DEFAULTS, Config
from couchpy_cli import prepare_config

# --------------------------------------------------------------------------- Config


def test_defaults_without_file(tmp_path):
    cfg = Config(tmp_path / "absent.ini")
    assert cfg.get("couchdb", "max_document_size") == "8000000"
    assert cfg.get_int("couchdb", "max_document_size") == 8_000_000
    assert cfg.get_int("couchdb", "max_dbs_open") == 500
    assert cfg.get("chttpd", "bind_address") == "127.0.0.1"
    assert cfg.get_int("chttpd", "port") == 5984
    assert cfg.get_int("chttpd", "max_http_request_size") == 4294967296
    assert cfg.section("admins") == {}
    assert cfg.get("nosuch", "key") is None
    assert cfg.get("nosuch", "key", "dflt") == "dflt"


def test_file_overrides_defaults(tmp_path):
    path = tmp_path / "local.ini"
    path.write_text(
        "[couchdb]\nmax_document_size = 1234\n\n[chttpd]\nport = 6000\nmax_http_request_size = infinity\n"
        "[vendor]\nname = Someone\n"
    )
    cfg = Config(path)
    assert cfg.get_int("couchdb", "max_document_size") == 1234
    assert cfg.get_int("couchdb", "max_dbs_open") == 500  # untouched default
    assert cfg.get_int("chttpd", "port") == 6000
    assert cfg.get_int("chttpd", "max_http_request_size") is None  # infinity = unlimited
    assert cfg.get_int("couchdb", "max_attachment_size") is None  # default is infinity
    assert cfg.section("vendor") == {"name": "Someone"}
    chttpd = cfg.section("chttpd")
    assert chttpd["bind_address"] == "127.0.0.1" and chttpd["port"] == "6000"


def test_get_int_falls_back_on_garbage(tmp_path):
    path = tmp_path / "local.ini"
    path.write_text("[couchdb]\nmax_dbs_open = lots\n")
    assert Config(path).get_int("couchdb", "max_dbs_open", 77) == 77


def test_keys_are_case_sensitive(tmp_path):
    path = tmp_path / "local.ini"
    path.write_text("[admins]\nAdmin = a\nadmin = b\n")
    assert Config(path).section("admins") == {"Admin": "a", "admin": "b"}


def test_values_with_percent_and_semicolons_kept(tmp_path):
    # no interpolation: values are taken literally
    path = tmp_path / "local.ini"
    path.write_text("[admins]\nbob = p%ss(w)rd\n")
    assert Config(path).get("admins", "bob") == "p%ss(w)rd"


def test_set_delete_save_round_trip(tmp_path):
    path = tmp_path / "sub" / "couchpy.ini"
    cfg = Config(path)
    cfg.set("couchdb", "max_document_size", "99")
    cfg.set("admins", "Alice", "-pbkdf2:sha256-00,11,1")
    cfg.set("vendor", "name", "x")
    cfg.delete("vendor", "name")
    cfg.delete("nosuch", "key")  # harmless
    cfg.save()
    assert path.exists()
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & 0o077 == 0, oct(mode)  # it holds password hashes: owner only
    assert not path.with_suffix(".tmp").exists()
    again = Config(path)
    assert again.get_int("couchdb", "max_document_size") == 99
    assert again.section("admins") == {"Alice": "-pbkdf2:sha256-00,11,1"}
    assert again.get("vendor", "name") is None


def test_ensure_generated_is_stable(tmp_path):
    path = tmp_path / "couchpy.ini"
    cfg = Config(path)
    assert cfg.ensure_generated() is True
    uuid1 = cfg.get("couchdb", "uuid")
    secret1 = cfg.get("chttpd_auth", "secret")
    assert uuid1 and len(uuid1) == 32 and int(uuid1, 16) >= 0
    assert secret1
    assert cfg.ensure_generated() is False
    cfg.save()
    again = Config(path)
    assert again.ensure_generated() is False
    assert again.get("couchdb", "uuid") == uuid1
    assert again.get("chttpd_auth", "secret") == secret1


def test_defaults_use_couchdb_names():
    assert {"couchdb", "chttpd", "admins"} <= set(DEFAULTS)
    assert "max_document_size" in DEFAULTS["couchdb"]
    assert {"bind_address", "port", "max_http_request_size"} <= set(DEFAULTS["chttpd"])


# --------------------------------------------------------------------------- passwords


def test_hash_and_verify():
    stored = passwords.hash_password("s3cret", iterations=1000)
    assert stored.startswith("-pbkdf2:sha256-")
    derived, salt, iterations = stored[len("-pbkdf2:sha256-"):].split(",")
    assert iterations == "1000"
    assert len(derived) == 64 and int(derived, 16) >= 0  # SHA-256 output, hex
    assert salt
    assert passwords.is_hashed(stored)
    assert passwords.verify_password("s3cret", stored)
    assert not passwords.verify_password("s3cret ", stored)
    assert not passwords.verify_password("", stored)


def test_salted():
    a = passwords.hash_password("same", iterations=1000)
    b = passwords.hash_password("same", iterations=1000)
    assert a != b
    assert passwords.verify_password("same", a) and passwords.verify_password("same", b)


def test_matches_couchdb_derivation():
    # couch_passwords:pbkdf2(sha256, Password, Salt, Iterations): the salt string's bytes, hex key
    salt = "0123456789abcdef0123456789abcdef"
    expected = hashlib.pbkdf2_hmac("sha256", b"pw", salt.encode(), 10).hex()
    assert passwords.hash_password("pw", iterations=10, salt=salt) == f"-pbkdf2:sha256-{expected},{salt},10"


def test_legacy_sha1_pbkdf2_verifies():
    salt = "5d4b1b0d6c6a4b6a9c0f2b8d5e1a2c3b"
    derived = hashlib.pbkdf2_hmac("sha1", b"relax", salt.encode(), 10).hex()
    stored = f"-pbkdf2-{derived},{salt},10"
    assert passwords.is_hashed(stored)
    assert passwords.verify_password("relax", stored)
    assert not passwords.verify_password("Relax", stored)


@pytest.mark.parametrize("prf", ["sha", "sha224", "sha256", "sha384", "sha512"])
def test_couchdb_34_prf_forms_verify(prf):
    # CouchDB 3.4 writes -pbkdf2:<prf>- for any [chttpd_auth] pbkdf2_prf
    algo = "sha1" if prf == "sha" else prf
    salt = "aa" * 16
    derived = hashlib.pbkdf2_hmac(algo, b"pw", salt.encode(), 5).hex()
    stored = f"-pbkdf2:{prf}-{derived},{salt},5"
    assert passwords.is_hashed(stored), stored
    assert passwords.verify_password("pw", stored)
    assert not passwords.verify_password("px", stored)


def test_legacy_simple_hash_is_recognised():
    # `-hashed-<sha1(password+salt)>,<salt>`: CouchDB's get_unhashed_admins leaves these alone
    salt = "bb" * 16
    stored = "-hashed-" + hashlib.sha1(b"pw" + salt.encode()).hexdigest() + "," + salt
    assert passwords.is_hashed(stored)
    assert passwords.verify_password("pw", stored)
    assert not passwords.verify_password("px", stored)


@pytest.mark.parametrize(
    "garbage",
    ["plain", "", "-pbkdf2:sha256-", "-pbkdf2:sha256-zz,salt,10", "-pbkdf2:sha256-00,salt",
     "-pbkdf2:sha256-00,salt,notanint", "-pbkdf2:md5-00,salt,1"],
)
def test_garbage_never_verifies(garbage):
    assert passwords.verify_password("plain", garbage) is False


# --------------------------------------------------------------------------- start-up


def _prepare(tmp_path, ini_text: str | None):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    if ini_text is not None:
        (data / "couchpy.ini").write_text(ini_text)
    return data, prepare_config(data, None)


def test_plain_text_admin_is_hashed_on_start(tmp_path):
    data, (cfg, generated) = _prepare(
        tmp_path, "[chttpd_auth]\niterations = 1000\n\n[admins]\nalice = wonderland\n"
    )
    assert generated is None  # an admin exists: none is created
    text = (data / "couchpy.ini").read_text()
    assert "wonderland" not in text
    stored = Config(data / "couchpy.ini").get("admins", "alice")
    assert stored.startswith("-pbkdf2:sha256-")
    assert stored.endswith(",1000")  # [chttpd_auth] iterations, as CouchDB 3.x reads it
    assert passwords.verify_password("wonderland", stored)
    assert cfg.get("admins", "alice") == stored


def test_hashed_admins_left_alone(tmp_path):
    salt = "cc" * 16
    sha1_form = "-pbkdf2-" + hashlib.pbkdf2_hmac("sha1", b"pw", salt.encode(), 5).hex() + f",{salt},5"
    sha512_form = "-pbkdf2:sha512-" + hashlib.pbkdf2_hmac("sha512", b"pw", salt.encode(), 5).hex() + f",{salt},5"
    data, (cfg, generated) = _prepare(
        tmp_path, f"[admins]\nold = {sha1_form}\nnew = {sha512_form}\n"
    )
    assert generated is None
    again = Config(data / "couchpy.ini")
    assert again.get("admins", "old") == sha1_form
    assert again.get("admins", "new") == sha512_form


def test_first_start_creates_admin(tmp_path):
    data, (cfg, generated) = _prepare(tmp_path, "[chttpd_auth]\niterations = 1000\n")
    assert generated and len(generated) >= 12
    stored = Config(data / "couchpy.ini").get("admins", "admin")
    assert passwords.verify_password(generated, stored)
    assert generated not in (data / "couchpy.ini").read_text()
    # second start: nothing new is generated, the hash stays
    _, (cfg2, generated2) = _prepare(tmp_path, None)
    assert generated2 is None
    assert Config(data / "couchpy.ini").get("admins", "admin") == stored
    assert cfg2.get("couchdb", "uuid") == cfg.get("couchdb", "uuid")
