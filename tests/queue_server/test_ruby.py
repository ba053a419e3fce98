from queue_server.core import ruby


def test_segments_split_marked_terms_and_keep_the_rest():
    assert ruby.segments("{市民課|しみんか}へ 行きます") == [("市民課", "しみんか"), ("へ 行きます", None)]


def test_plain_and_bracketed_forms():
    text = "{死亡届|しぼうとどけ}を {市民課|しみんか}に 出します"
    assert ruby.plain(text) == "死亡届を 市民課に 出します"
    assert ruby.bracketed(text) == "死亡届（しぼうとどけ）を 市民課（しみんか）に 出します"


def test_html_escapes_and_marks_ruby():
    assert ruby.to_html("<{市民課|しみんか}>") == "&lt;<ruby>市民課<rt>しみんか</rt></ruby>&gt;"


def test_format_fields_are_not_ruby():
    assert ruby.plain("質問 {n}（{left} 問）") == "質問 {n}（{left} 問）"
    assert ruby.segments("{n}") == [("{n}", None)]
