Feature: Counting page views
  Every time somebody opens the page, the page tells them how many times
  it has been seen, their own visit included.

  Scenario: The very first visit is counted
    Given nobody has visited the page yet
    When a visitor opens the page
    Then the visitor is told "This page has been seen 1 times."
    And the page has been seen 1 times in total

  Scenario: Earlier visits are remembered
    Given the page has been seen 4 times
    When a visitor opens the page
    Then the visitor is told "This page has been seen 5 times."

  Scenario Outline: Visits one after another count up by one each
    Given the page has been seen <earlier> times
    When <visits> visitors open the page one after another
    Then the visitors are told the counts <first> to <total>, in order
    And the page has been seen <total> times in total

    Examples:
      | earlier | visits | first | total |
      | 0       | 3      | 1     | 3     |
      | 41      | 1      | 42    | 42    |
      | 99      | 2      | 100   | 101   |

  Scenario: Visitors arriving at the same moment are all counted
    Given the page has been seen 10 times
    When 50 visitors open the page at the same moment
    Then every visitor sees the page
    And no two visitors are told the same count
    And the page has been seen 60 times in total

  Scenario: The page is shown as a web page
    When a visitor opens the page
    Then the visitor's browser is told the page is HTML in UTF-8
