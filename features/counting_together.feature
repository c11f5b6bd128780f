Feature: Visitors arriving together are counted together
  The page-view store saves up to two counts at a time. While it is saving
  two, the visitors who arrive meanwhile wait for one of them and are then
  saved together, in one step. Each of them is still told a count of their
  own, in the order they arrived, and nobody is counted twice. Two counts
  saved at the same time may be given in either order. A visitor who arrives
  alone waits for nobody.

  Scenario: A crowd is told every count exactly once
    Given the page has been seen 100 times
    When 100 visitors open the page at the same moment
    Then every visitor sees the page
    And the visitors are told every count from 101 to 200 exactly once
    And the page has been seen 200 times in total

  @own-store
  Scenario: A visitor who arrives alone is saved alone
    Given the page has been seen 20 times
    When 3 visitors open the page one after another
    Then the visitors are told the counts 21 to 23, in order
    And the page-view store was updated 3 times

  @own-store @serial
  Scenario: Visitors who arrive while two counts are being saved are saved together, in the order they came
    The first two visitors are each saved at once, at the same time; the
    three who arrive while those two counts are being saved are saved
    together.

    Given the page has been seen 10 times
    And the page-view store is slow to answer for 300 milliseconds
    When 5 visitors open the page shortly one after another
    Then the first 2 visitors are told the counts 11 to 12 between them
    And the last 3 visitors are told the counts 13 to 15, in order
    And the page-view store was updated 3 times
    And the page has been seen 15 times in total

  @own-store @serial
  Scenario: Visitors saved together whose count fails all get the apology, and nobody is counted twice
    The store holds counts up to 9223372036854775807. The first two visitors
    are each saved at once; the three who arrive meanwhile are saved together,
    which would take the count past that limit, so the store refuses them.

    Given the page has been seen 9223372036854775804 times
    And the page-view store is slow to answer for 300 milliseconds
    When 5 visitors open the page shortly one after another
    Then the first 2 visitors are told the counts 9223372036854775805 to 9223372036854775806 between them
    And the other 3 visitors are given the apology "Sorry, something went wrong 😔"
    And the page has been seen 9223372036854775806 times in total
    When a visitor opens the page
    Then the visitor is told "This page has been seen 9223372036854775807 times."
    And the page has been seen 9223372036854775807 times in total
