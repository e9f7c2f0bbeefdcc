"""Directory and routing rules: five levels from a data file, rules explained, emergencies."""

from __future__ import annotations

import pytest

from onething import DirectoryError, UnknownRegion
from onething.dedupe import distance_m, similarity
from onething.directory import LEVELS, Directory
from onething.routing import Rules


@pytest.fixture(scope="module")
def directory() -> Directory:
    return Directory.load()


@pytest.fixture(scope="module")
def rules(directory: Directory) -> Rules:
    return Rules.load(directory)


def test_directory_has_five_levels_and_resolves_names(directory: Directory) -> None:
    assert {r.level for r in directory.regions.values()} == set(LEVELS)
    grid = directory.region("九龙社区第一网格")
    assert [r.level for r in directory.ancestors(grid.code)] == list(reversed(LEVELS))
    assert directory.region("罗平县罗雄街道九龙社区").name == "九龙社区"
    assert directory.township_office(grid.code) == "罗平县罗雄街道办事处"


def test_unknown_region_is_refused_with_a_hint(directory: Directory) -> None:
    with pytest.raises(UnknownRegion, match="九龙社区"):
        directory.region("九龙")
    with pytest.raises(UnknownRegion):
        directory.region("火星")


def test_a_county_edits_the_file_without_code(tmp_path, directory: Directory) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text('[[rule]]\nid = "x"\nmatter = "appeal_12345"\nkeywords = ["路灯"]\n'
                   'lead = "县不存在局"\n', encoding="utf-8")
    with pytest.raises(DirectoryError, match="县不存在局"):
        Rules.load(directory, bad)
    good = tmp_path / "good.toml"
    good.write_text('[[rule]]\nid = "lamp"\nname = "路灯"\nmatter = "appeal_12345"\n'
                    'keywords = ["路灯"]\nlead = "县供电局"\n', encoding="utf-8")
    route = Rules.load(directory, good).route("路灯不亮", directory.region("九龙社区").code)
    assert route.rule.id == "lamp" and route.lead == "县供电局"


def test_route_explains_which_rule_matched_and_why(rules: Rules, directory: Directory) -> None:
    route = rules.route("小区下水道堵塞，污水外溢", directory.region("九龙社区第一网格").code,
                        channel="12345")
    assert route.rule.id == "drainage"
    assert route.lead == "县住建局"
    assert route.collaborators == ["县水务局", "罗平县罗雄街道办事处"]  # {属地} resolved
    assert "matched rule drainage" in route.explanation[-1]
    assert "下水道" in route.explanation[-1]
    assert any("rule water_supply: no keyword" in line for line in route.explanation)


def test_matter_rules_leave_departments_to_the_bpmn(rules: Rules, directory: Directory) -> None:
    route = rules.route("邻居私搭乱建加盖三层", directory.region("板桥村").code)
    assert route.matter == "illegal_building" and route.lead is None


def test_category_must_agree(rules: Rules, directory: Directory) -> None:
    code = directory.region("九龙社区").code
    route = rules.route("下水道堵了", code, category="环境/噪声")
    assert route.rule is None or route.rule.id != "drainage"


@pytest.mark.parametrize("text,number", [("楼下有人持刀打架斗殴", "110"), ("厨房着火了", "119"),
                                         ("老人晕倒了没有呼吸", "120"), ("路口两车追尾", "122")])
def test_emergencies_are_redirected(rules: Rules, directory: Directory, text: str,
                                    number: str) -> None:
    route = rules.route(text, directory.region("九龙社区").code)
    assert route.emergency.number == number and route.rule is None


def test_unmatched_report_goes_to_the_queue(rules: Rules, directory: Directory) -> None:
    route = rules.route("咨询一下退休手续怎么办", directory.region("九龙社区").code)
    assert route.rule is None and "manual dispatch queue" in route.explanation[-1]


def test_similarity_and_distance() -> None:
    assert similarity("九龙社区下水道堵塞污水外溢", "九龙社区下水道又堵了，污水外溢") > 0.4
    assert similarity("下水道堵塞", "广场舞噪音扰民") == 0
    assert 200 < distance_m(24.8846, 104.3082, 24.8861, 104.3105) < 300
