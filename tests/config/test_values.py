"""Parsed values, defaults, and every refusal of a bad value as one line."""

import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from electrumx.coins import Bitcoin, BitcoinRegtest, BitcoinTestnet, Litecoin
from electrumx.config import SETTINGS, ConfigError, load_settings
from electrumx.config.parsers import FALSE_WORDS, TRUE_WORDS, boolean

from tests.config.helpers import PASSWORD, load, refused


def test_defaults_are_electrumx_defaults():
    s = load()
    assert s.coin is Bitcoin and s.net == "mainnet" and s.db_engine == "leveldb"
    assert s.cache_mb == 1200 and s.reorg_limit == 200
    assert s.max_sessions == 1000 and s.max_send == Bitcoin.DEFAULT_MAX_SEND
    assert s.max_recv == 1_000_000
    assert (s.cost_soft_limit, s.cost_hard_limit, s.bandwidth_unit_cost) == (1000, 10000, 5000)
    assert (s.request_sleep, s.initial_concurrent) == (2500, 10)
    assert (s.request_timeout, s.session_timeout) == (30, 600)
    assert (s.session_group_by_subnet_ipv4, s.session_group_by_subnet_ipv6) == (24, 48)
    assert (s.max_subs, s.max_session_subs, s.max_group_subs) == (250_000, 50_000, 100_000)
    assert s.drop_client is None and s.peer_discovery == "on" and s.peer_announce is True
    assert s.blacklist_url == Bitcoin.BLACKLIST_URL
    assert (s.tor_proxy_host, s.tor_proxy_port, s.force_proxy) == ("localhost", None, False)
    assert s.banner_file is None and s.tor_banner_file is None and s.donation_address == ""
    assert (s.log_level, s.log_sessions, s.anon_logs, s.allow_root) == ("info", 3600, False,
                                                                      False)
    assert (s.daemon_poll_interval_blocks, s.daemon_poll_interval_mempool) == (5000, 5000)
    assert s.services == [] and s.report_services == [] and s.demo is False


def test_connection_slot_defaults_and_exempt_subnets():
    def exempt(s):
        return [str(network) for network in s.subnets_to_exclude_from_per_ip_limits]
    s = load()
    assert s.handshake_timeout == 10
    assert (s.unidentified_timeout, s.partial_request_timeout) == (30, 30)
    assert s.max_clients_per_ip == 12 and exempt(s) == ["127.0.0.0/8", "::1/128"]
    s = load({"SUBNETS_TO_EXCLUDE_FROM_PER_IP_LIMITS": " 10.0.0.7, 2001:db8::/48,",
              "MAX_CLIENTS_PER_IP": "0"})
    assert s.max_clients_per_ip == 0 and exempt(s) == ["10.0.0.7/32", "2001:db8::/48"]
    assert exempt(load({"SUBNETS_TO_EXCLUDE_FROM_PER_IP_LIMITS": ""})) == []


def test_every_setting_is_an_attribute():
    s = load()
    for setting in SETTINGS:
        assert hasattr(s, setting.attribute)


def test_coin_defaults_follow_the_coin():
    s = load({"COIN": "bitcoin", "NET": "regtest", "DAEMON_URL": "127.0.0.1"})
    assert s.coin is BitcoinRegtest and s.net == "regtest"
    assert s.reorg_limit == BitcoinRegtest.REORG_LIMIT
    assert s.daemon_urls[0].port == BitcoinRegtest.RPC_PORT
    assert load({"NET": "testnet"}).reorg_limit == BitcoinTestnet.REORG_LIMIT == 8000
    assert load({"COIN": "Litecoin"}).coin is Litecoin
    assert load({"NET": "testnet"}).blacklist_url is None


def test_daemon_urls_fail_over_in_order_and_never_show_the_password():
    s = load({"DAEMON_URL": f"http://u:{PASSWORD}@node1, node2:9000"})
    assert [(u.host, u.port) for u in s.daemon_urls] == [("node1", 8332), ("node2", 9000)]
    assert s.daemon_urls[0].password == PASSWORD
    assert PASSWORD not in repr(s) and PASSWORD not in str(s.daemon_urls)


def test_values_are_parsed():
    s = load({"CACHE_MB": " 2000 ", "DROP_CLIENT": "^Electrum 2", "LOG_LEVEL": "WARNING",
              "PEER_DISCOVERY": "Self", "TOR_PROXY_PORT": "9150", "BANNER_FILE": __file__,
              "SESSION_GROUP_BY_SUBNET_IPV6": "128", "DB_ENGINE": "LevelDB"})
    assert s.cache_mb == 2000 and s.drop_client.match("Electrum 2.9")
    assert s.log_level == "warn" and s.peer_discovery == "self" and s.tor_proxy_port == 9150
    assert s.banner_file == s.tor_banner_file == __file__
    assert s.session_group_by_subnet_ipv6 == 128 and s.db_engine == "leveldb"


def test_equal_cost_limits_are_one_apart():
    s = load({"COST_SOFT_LIMIT": "500", "COST_HARD_LIMIT": "500"})
    assert (s.cost_soft_limit, s.cost_hard_limit) == (500, 501)


def test_a_zero_hard_limit_turns_throttling_off():
    s = load({"COST_SOFT_LIMIT": "0", "COST_HARD_LIMIT": "0"})
    assert (s.cost_soft_limit, s.cost_hard_limit) == (0, 0)
    s = load({"COST_SOFT_LIMIT": "1000", "COST_HARD_LIMIT": "0"})
    assert s.cost_hard_limit == 0


def test_live_settings_can_change():
    s = load({"MAX_SUBS": "10", "MAX_SESSION_SUBS": "5"})
    assert (s.max_subs, s.max_session_subs) == (10, 5)
    s.max_subs = 20
    assert s.max_subs == 20


@pytest.mark.parametrize("word", sorted(TRUE_WORDS | {"YES", "True", " on "}))
def test_true_words(word):
    assert boolean("ANON_LOGS", word) is True
    assert load({"ANON_LOGS": word}).anon_logs is True


@pytest.mark.parametrize("word", sorted(FALSE_WORDS | {"NO", "False", "OFF"}))
def test_false_words(word):
    assert load({"PEER_ANNOUNCE": word}).peer_announce is False


@pytest.mark.parametrize("word", ["maybe", "2", "yess", "-1", "enable"])
def test_other_words_are_not_booleans(word):
    message = refused({"FORCE_PROXY": word})
    assert message == f"FORCE_PROXY: {word!r} is not a yes/no value (use 1/0, yes/no, " \
                      "true/false or on/off)"


@pytest.mark.parametrize("env, expected", [
    ({"COIN": "Nocoin"}, "COIN: unknown coin 'Nocoin'; known coins: Bitcoin, BitcoinSV, Litecoin"),
    ({"NET": "moonnet"}, "NET: unknown network 'moonnet' for Bitcoin"),
    ({"DAEMON_URL": ""}, "DAEMON_URL: is required"),
    ({"DAEMON_URL": " , "}, "DAEMON_URL: DAEMON_URL names no node"),
    ({"DAEMON_URL": f"ftp://u:{PASSWORD}@host"}, "DAEMON_URL: daemon URL scheme"),
    ({"DAEMON_URL": f"http://u:{PASSWORD}@host:99999"}, "DAEMON_URL: malformed daemon URL"),
    ({"DAEMON_URL": f"http://u:{PASSWORD}@host:port"}, "DAEMON_URL: malformed daemon URL"),
    ({"DAEMON_URL": f"http://u:{PASSWORD}@"}, "DAEMON_URL: daemon URL has no host"),
    ({"DAEMON_URL": f"http://u:{PASSWORD}@h/?x"}, "DAEMON_URL: daemon URL must not have a"),
    ({"DB_DIRECTORY": ""}, "DB_DIRECTORY: is required"),
    ({"DB_DIRECTORY": __file__}, "DB_DIRECTORY: '" + __file__ + "' is not a directory"),
    ({"DB_ENGINE": "rocksdb"}, "DB_ENGINE: 'rocksdb' is not supported: this server keeps its "
                               "index in LevelDB only"),
    ({"CACHE_MB": "lots"}, "CACHE_MB: 'lots' is not a whole number"),
    ({"CACHE_MB": "1.5"}, "CACHE_MB: '1.5' is not a whole number"),
    ({"CACHE_MB": ""}, "CACHE_MB: '' is not a whole number"),
    ({"MAX_SESSIONS": "-1"}, "MAX_SESSIONS: -1 is below the minimum of 1"),
    ({"COST_SOFT_LIMIT": "-5"}, "COST_SOFT_LIMIT: -5 is below the minimum of 0"),
    ({"MAX_SUBS": "-1"}, "MAX_SUBS: -1 is below the minimum of 0"),
    ({"MAX_SEND": "349999"}, "MAX_SEND: 349999 is below the minimum of 350000"),
    ({"MAX_RECV": "1000"}, "MAX_RECV: 1000 is below the minimum of 800100"),
    ({"REORG_LIMIT": "0"}, "REORG_LIMIT: 0 is below the minimum of 1"),
    ({"SESSION_GROUP_BY_SUBNET_IPV4": "33"}, "SESSION_GROUP_BY_SUBNET_IPV4: 33 is above the "
                                             "maximum of 32"),
    ({"TOR_PROXY_PORT": "65536"}, "TOR_PROXY_PORT: 65536 is above the maximum of 65535"),
    ({"TOR_PROXY_PORT": "tor"}, "TOR_PROXY_PORT: 'tor' is not a whole number"),
    ({"COST_SOFT_LIMIT": "100", "COST_HARD_LIMIT": "50"},
     "COST_HARD_LIMIT: 50 is below COST_SOFT_LIMIT (100)"),
    ({"PEER_DISCOVERY": "sometimes"}, "PEER_DISCOVERY: 'sometimes' is not one of on, off, "
                                      "self"),
    ({"DROP_CLIENT": "(unclosed"}, "DROP_CLIENT: '(unclosed' is not a valid regular "
                                   "expression: missing ), unterminated subpattern"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: 'loud' is not a log level"),
    ({"SUBNETS_TO_EXCLUDE_FROM_PER_IP_LIMITS": "127.0.0.1, localhost"},
     "SUBNETS_TO_EXCLUDE_FROM_PER_IP_LIMITS: 'localhost' is not an IP address or subnet"),
    ({"MAX_CLIENTS_PER_IP": "-1"}, "MAX_CLIENTS_PER_IP: -1 is below the minimum of 0"),
    ({"HANDSHAKE_TIMEOUT": "0"}, "HANDSHAKE_TIMEOUT: 0 is below the minimum of 1"),
    ({"BANNER_FILE": "/nonexistent"}, "BANNER_FILE: cannot read '/nonexistent': No such file"),
    ({"TOR_BANNER_FILE": "/"}, "TOR_BANNER_FILE: cannot read '/': Is a directory"),
    ({"SSL_CERTFILE": "/nonexistent.crt"}, "SSL_CERTFILE: cannot read '/nonexistent.crt'"),
])
def test_bad_values_are_refused_with_one_line(env, expected):
    assert refused(env).startswith(expected)


def test_demo_needs_no_node_or_directory():
    s = load_settings({}, {}, None, demo=True)
    assert s.demo is True and s.coin is BitcoinRegtest and s.daemon_urls == [] and s.db_directory
    assert [str(svc) for svc in s.services] == ["tcp://127.0.0.1:51001",
                                                "ws://127.0.0.1:51003",
                                                "rpc://127.0.0.1:8000"]
    assert s.peer_discovery == "off" and s.peer_announce is False


def test_demo_defaults_yield_to_the_operator():
    s = load(demo=True, env={"SERVICES": "tcp://127.0.0.1:7000", "PEER_DISCOVERY": "self"})
    assert [str(svc) for svc in s.services] == ["tcp://127.0.0.1:7000"]
    assert s.peer_discovery == "self"


MALFORMED_URLS = [
    "http://u:{}@host:99999", "http://u:{}@host:port/", "http://u:{}@", "gopher://u:{}@h",
    "http://u:{}@h/?q=1", "http://u:{}@h#frag", "http://u:{}@[::1", "http://u:{}@h:-1",
    "http://u:{}@h:1:2", "http://good:1@h, http://u:{}@h:x",
]


@hypothesis_settings(max_examples=200, deadline=None)
@given(template=st.sampled_from(MALFORMED_URLS),
       tail=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"),
                                           blacklist_characters="@/?#[],:% "),
                    min_size=1, max_size=12))
def test_a_malformed_daemon_url_never_shows_the_password(template, tail):
    password = "Pw9" + tail
    with pytest.raises(ConfigError) as info:
        load({"DAEMON_URL": template.format(password)})
    assert password not in str(info.value)
    assert str(info.value).startswith("DAEMON_URL: ")


# Addresses of one 20-byte hash (00 01 .. 13), on each network's encodings.
MAINNET_SEGWIT = "bc1qqqqsyqcyq5rqwzqfpg9scrgwpugpzysn4v0345"
MAINNET_P2PKH = "112D2adLM3UKy4Z4giRbReR6gjWuvHUqB"
TESTNET_SEGWIT = "tb1qqqqsyqcyq5rqwzqfpg9scrgwpugpzysnl25zw8"
TESTNET_P2PKH = "mfWyW5fc9NUj75YAnFgoRLrjxgLDn2MMth"
REGTEST_SEGWIT = "bcrt1qqqqsyqcyq5rqwzqfpg9scrgwpugpzysnard0ew"
LITECOIN_P2PKH = "LKDyUEtTR1HXamkiEphisSiBJu6o3ZPE34"


@pytest.mark.parametrize("env", [
    {"DONATION_ADDRESS": MAINNET_SEGWIT},
    {"DONATION_ADDRESS": MAINNET_P2PKH},
    {"DONATION_ADDRESS": TESTNET_SEGWIT, "NET": "testnet"},
    {"DONATION_ADDRESS": TESTNET_P2PKH, "NET": "signet"},
    {"DONATION_ADDRESS": REGTEST_SEGWIT, "NET": "regtest"},
    {"DONATION_ADDRESS": LITECOIN_P2PKH, "COIN": "Litecoin"},
])
def test_a_donation_address_of_the_coin_and_network_is_taken(env):
    assert load(env).donation_address == env["DONATION_ADDRESS"]


@pytest.mark.parametrize("env, network", [
    ({"DONATION_ADDRESS": MAINNET_SEGWIT, "NET": "testnet"}, "Bitcoin testnet"),
    ({"DONATION_ADDRESS": MAINNET_P2PKH, "NET": "testnet"}, "Bitcoin testnet"),
    ({"DONATION_ADDRESS": TESTNET_SEGWIT}, "Bitcoin mainnet"),
    ({"DONATION_ADDRESS": TESTNET_SEGWIT, "NET": "regtest"}, "Bitcoin regtest"),
    ({"DONATION_ADDRESS": MAINNET_P2PKH, "COIN": "Litecoin"}, "Litecoin mainnet"),
    ({"DONATION_ADDRESS": "send me coins"}, "Bitcoin mainnet"),
])
def test_a_donation_address_of_another_coin_or_network_is_refused(env, network):
    assert refused(env) == (f"DONATION_ADDRESS: {env['DONATION_ADDRESS']!r} is not a "
                            f"{network} address")


def test_leveldb_settings_and_their_bounds():
    s = load()
    assert (s.db_bloom_bits, s.db_block_cache_mb, s.db_write_buffer_mb,
            s.db_compression) == (0, 64, 16, "snappy")
    s = load({"DB_BLOOM_BITS": "10", "DB_BLOCK_CACHE_MB": "8", "DB_WRITE_BUFFER_MB": "1024",
              "DB_COMPRESSION": " NONE "})
    assert (s.db_bloom_bits, s.db_block_cache_mb, s.db_write_buffer_mb,
            s.db_compression) == (10, 8, 1024, "none")
    assert refused({"DB_BLOOM_BITS": "-1"}) == "DB_BLOOM_BITS: -1 is below the minimum of 0"
    assert refused({"DB_BLOOM_BITS": "31"}) == "DB_BLOOM_BITS: 31 is above the maximum of 30"
    assert refused({"DB_BLOCK_CACHE_MB": "4"}) == \
        "DB_BLOCK_CACHE_MB: 4 is below the minimum of 8"
    assert refused({"DB_BLOCK_CACHE_MB": "64MB"}) == \
        "DB_BLOCK_CACHE_MB: '64MB' is not a whole number"
    assert refused({"DB_WRITE_BUFFER_MB": "0"}) == \
        "DB_WRITE_BUFFER_MB: 0 is below the minimum of 1"
    assert refused({"DB_WRITE_BUFFER_MB": "2048"}) == \
        "DB_WRITE_BUFFER_MB: 2048 is above the maximum of 1024"
    assert refused({"DB_COMPRESSION": "zstd"}) == \
        "DB_COMPRESSION: 'zstd' is not one of snappy, none"
