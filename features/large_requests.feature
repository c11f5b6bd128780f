@reliability
Feature: How large a request may be
  Browsers send cookies with every visit, and some sites leave many of them.
  A request head of up to 16 KiB is served; a larger one is refused as too
  large and not counted.

  @over-the-wire
  Scenario: A browser carrying 8 KiB of cookies is served
    Given the page has been seen 20 times
    When a visitor whose browser sends 8 KiB of cookies opens the page
    Then the page is served to them
    And the page has been seen 21 times in total

  @over-the-wire
  Scenario: A request head over 16 KiB is refused as too large
    Given the page has been seen 20 times
    When a visitor whose browser sends 17 KiB of cookies opens the page
    Then they are told the request is too large
    And the page has been seen 20 times in total
