"""Writes tests/fixtures/geoip-test.mmdb, the small MaxMind-format city database the GeoIP tests
read: two networks with a city and a country each. Needs `pip install mmdb-writer`."""

from netaddr import IPSet
from mmdb_writer import MMDBWriter

writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City",
                    languages=["en"], description="revocable test data")
writer.insert_network(IPSet(["89.160.20.0/24"]), {
    "city": {"names": {"en": "Linköping"}},
    "country": {"iso_code": "SE", "names": {"en": "Sweden"}},
})
writer.insert_network(IPSet(["2001:db8:1::/48"]), {
    "country": {"iso_code": "NZ", "names": {"en": "New Zealand"}},
})
writer.to_db_file("tests/fixtures/geoip-test.mmdb")
